/**
 * The Lua scripts of the lock engine. Each runs atomically on one Redis instance.
 *
 * Keys: the lock keys first, then (for acquire and fence) one fencing counter per lock key, in the
 * same order. ARGV[1] is always the lock value (128 random bits, hex). Counters never expire.
 * A grant moves a counter to max(counter + 1, ARGV[4]), the requesting client's clock in µs, the same
 * value on every instance of one attempt (so instances with the same history agree and need no
 * write-back): strictly increasing like a plain counter and, on an instance that restarted empty,
 * back above the tokens issued before (within the clock skew between replicas). docs/SAFETY.md.
 * Commands used (for a least-privilege ACL): SET, GET, DEL, EXISTS, PEXPIRE, PUBLISH, plus EVALSHA/EVAL;
 * waiters' subscriber connections use SUBSCRIBE / UNSUBSCRIBE on channels named like the lock keys.
 * @internal
 */

/**
 * Sets every lock key if none exists and advances its counter; returns the largest counter, or -1 if
 * held. ARGV: value, ttl (ms), number of lock keys, the client clock floor (µs).
 *
 * Keys that already hold ARGV[1] are this very attempt, run a second time: a client re-sends the
 * commands a connection reset left unanswered (ioredis does unless `maxRetriesPerRequest` is 0),
 * and the value is unique to one attempt. That run answers as the first did (the largest counter,
 * already advanced), so the attempt counts its grant instead of leaving its own keys held by
 * nobody until they expire. Their TTL is left as the first run set it: the validity was timed from
 * before that run. When only some still hold it (another was force-released between the runs),
 * the run refuses and deletes those: nobody undoes a refusing instance, and nobody holds them.
 */
export const ACQUIRE = `
local now = tonumber(ARGV[4])
local function advance(key)
  local c = tonumber(redis.call('GET', key) or '0') + 1
  if now > c then c = now end
  redis.call('SET', key, string.format('%d', c))
  return c
end
local n = tonumber(ARGV[3])
local function again()
  local token = -1
  local mine = {}
  for i = 1, n do
    if redis.pcall('GET', KEYS[i]) == ARGV[1] then
      mine[#mine + 1] = KEYS[i]
      local c = tonumber(redis.call('GET', KEYS[n + i]) or '0')
      if c > token then token = c end
    end
  end
  if #mine == n then return token end
  for _, key in ipairs(mine) do redis.call('DEL', key) end
  return -1
end
if n == 1 then
  if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return again() end
  return advance(KEYS[2])
end
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then return again() end
end
local token = 0
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
  local c = advance(KEYS[n + i])
  if c > token then token = c end
end
return token
`;

/**
 * A cron tick claim: sets KEYS[1] to ARGV[1] for ARGV[2] ms if it does not exist; 1 when set, else 0.
 * A key that already holds ARGV[1] is this claim run a second time (see ACQUIRE): 1, so a re-sent
 * claim does not lose the tick it took. No fencing counter: claims leave nothing once expired.
 */
export const CLAIM = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.pcall('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
`;

/** Raises every counter to at least ARGV[2], only while all lock keys still hold our value; 1 or 0. */
export const FENCE = `
local n = tonumber(ARGV[3])
for i = 1, n do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then return 0 end
end
local t = tonumber(ARGV[2])
for i = 1, n do
  local c = tonumber(redis.call('GET', KEYS[n + i]) or '0')
  if c < t then redis.call('SET', KEYS[n + i], ARGV[2]) end
end
return 1
`;

/** Sets the TTL of every lock key to ARGV[2] ms if all still hold our value; 1 or 0. */
export const EXTEND = `
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then return 0 end
end
for i = 1, #KEYS do
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return 1
`;

/**
 * Deletes the lock keys that still hold our value; returns how many it deleted. With ARGV[2] = '1' it
 * announces each deletion on a channel named like the key, so waiters retry at once (pcall: an ACL
 * without `+publish` loses the announcement, never the release).
 */
export const RELEASE = `
local removed = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    removed = removed + 1
    if ARGV[2] == '1' then pcall(redis.call, 'PUBLISH', KEYS[i], '') end
  end
end
return removed
`;

/**
 * Frees KEYS[1] whoever holds it and, in the same step, advances its fencing counter KEYS[2] (when
 * the key has one: tick claims have none) to max(counter + 1, ARGV[1]) like a grant, so every later
 * token is above the stale holder's. ARGV[2] = '1' announces the release. 1 when it was held, else 0.
 */
export const FORCE_RELEASE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1])
local fence = redis.call('GET', KEYS[2])
if fence then
  local c = tonumber(fence) + 1
  local now = tonumber(ARGV[1])
  if now > c then c = now end
  redis.call('SET', KEYS[2], string.format('%d', c))
end
if ARGV[2] == '1' then pcall(redis.call, 'PUBLISH', KEYS[1], '') end
return 1
`;

/**
 * A concurrency-limited acquisition's first step on one instance: takes the first free permit key
 * from permit ARGV[5] (0-based) on, wrapping around, and advances that permit's counter. One
 * attempt starts at the same permit on every instance, so an uncontended attempt takes the same
 * permit everywhere; attempts start at random permits, so concurrent ones rarely collide while
 * several are free, and all meet on the last free one. Keys: the `limit` permit keys, then their
 * counters. ARGV: value, ttl (ms), limit, the client clock floor (µs), start. Returns
 * `{permit, counter}` (permit 0-based), or -1 when every permit is held. Every permit is read
 * first: one that already holds ARGV[1] is this attempt run a second time (see ACQUIRE), which
 * answers with that permit instead of taking another.
 */
export const ACQUIRE_PERMIT = `
local n = tonumber(ARGV[3])
local first = tonumber(ARGV[5])
local free = nil
for j = 0, n - 1 do
  local i = (first + j) % n + 1
  -- pcall: a key of another type is an error reply here (a table): held, never ours.
  local v = redis.pcall('GET', KEYS[i])
  if v == ARGV[1] then return {i - 1, tonumber(redis.call('GET', KEYS[n + i]) or '0')} end
  if not v and not free then free = i end
end
if not free then return -1 end
redis.call('SET', KEYS[free], ARGV[1], 'PX', ARGV[2])
local c = tonumber(redis.call('GET', KEYS[n + free]) or '0') + 1
local now = tonumber(ARGV[4])
if now > c then c = now end
redis.call('SET', KEYS[n + free], string.format('%d', c))
return {free - 1, c}
`;

/**
 * The second step when the first gave no permit a majority: moves this attempt to permit ARGV[3]
 * (1-based) on one instance. Deletes our value from every other permit key (announcing it with
 * ARGV[5] = '1'), then takes the chosen one if it is free and advances its counter. Keys: the
 * `limit` permit keys, then the chosen permit's counter. ARGV: value, ttl, chosen, floor, publish.
 * Returns the counter, or -1 when another owner holds the chosen permit here.
 */
export const TAKE_PERMIT = `
local s = tonumber(ARGV[3])
local n = #KEYS - 1
for i = 1, n do
  if i ~= s and redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    if ARGV[5] == '1' then pcall(redis.call, 'PUBLISH', KEYS[i], '') end
  end
end
local fence = KEYS[n + 1]
if redis.call('GET', KEYS[s]) == ARGV[1] then return tonumber(redis.call('GET', fence) or '0') end
if not redis.call('SET', KEYS[s], ARGV[1], 'NX', 'PX', ARGV[2]) then return -1 end
local c = tonumber(redis.call('GET', fence) or '0') + 1
local now = tonumber(ARGV[4])
if now > c then c = now end
redis.call('SET', fence, string.format('%d', c))
return c
`;

/**
 * Reads what `LockAdmin.list()` needs of one SCAN step's keys in one call: KEYS come in pairs (lock
 * key, its fencing counter); returns value, PTTL and counter per pair (false where absent, or where
 * the key is not a string). Bounded by the SCAN step's size, so it blocks Redis about as long as
 * that SCAN call did.
 */
export const READ_HELD = `
local out = {}
for i = 1, #KEYS, 2 do
  local ok, value = pcall(redis.call, 'GET', KEYS[i])
  if not ok then value = false end
  out[#out + 1] = value
  out[#out + 1] = redis.call('PTTL', KEYS[i])
  local fok, fence = pcall(redis.call, 'GET', KEYS[i + 1])
  if not fok then fence = false end
  out[#out + 1] = fence
end
return out
`;

/**
 * Clock floors at or above this (2^52 µs, the year 2112) come from a broken clock: they are not
 * sent, so one replica with a wild clock cannot push a counter near 2^53 and leave every later
 * token inexact (refused) for all replicas; the counter then just advances by one.
 * @internal
 */
export const MAX_CLOCK_FLOOR = 2 ** 52;

/**
 * The client clock in µs that floors the fencing counters (see above), or 0 when the clock is
 * beyond {@link MAX_CLOCK_FLOOR} or not a number.
 * @internal
 */
export function clockFloor(now: number = Date.now()): number {
  const floor = Math.floor(now) * 1000;
  return Number.isFinite(floor) && floor > 0 && floor < MAX_CLOCK_FLOOR ? floor : 0;
}
