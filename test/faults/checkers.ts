/** What the fault workers and the suite share: the fenced store and the per-run counts. */

/** A fenced store: accepts a write only if its token is >= the highest seen (KEYS[1]), else 0. */
export const FENCED_WRITE = `
local hi = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = tonumber(ARGV[1])
if t < hi then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1`;

/**
 * An occupancy counter for concurrency limits: INCR KEYS[1] (holders inside now) and keep the
 * highest value ever seen in KEYS[2]; returns the holders inside, this one included.
 */
export const OCCUPY = `
local n = redis.call('INCR', KEYS[1])
local most = tonumber(redis.call('GET', KEYS[2]) or '0')
if n > most then redis.call('SET', KEYS[2], n) end
return n`;

/** Counts of one batch of critical sections in one worker. */
export interface RunStats {
  runs: number;
  busy: number;
  unavailable: number;
  errors: number;
  violations: number;
  rejected: number;
  unavailableMs: number[];
}

/** All-zero counts. */
export const emptyStats = (): RunStats => ({
  runs: 0,
  busy: 0,
  unavailable: 0,
  errors: 0,
  violations: 0,
  rejected: 0,
  unavailableMs: [],
});

/** Sums counts from several workers. */
export function addStats(list: RunStats[]): RunStats {
  const total = emptyStats();
  for (const r of list) {
    total.runs += r.runs;
    total.busy += r.busy;
    total.unavailable += r.unavailable;
    total.errors += r.errors;
    total.violations += r.violations;
    total.rejected += r.rejected;
    total.unavailableMs.push(...r.unavailableMs);
  }
  return total;
}
