/** The re-send branches of ACQUIRE / ACQUIRE_PERMIT / CLAIM, run directly on a real Redis. */
import { Redis } from 'ioredis';
import {
  ACQUIRE,
  ACQUIRE_PERMIT,
  CLAIM,
  FORCE_RELEASE,
} from '@app/distributed-lock/redis/lock.scripts';
import { RedisFleet } from './support/redis-fleet';

describe('the re-send branches of the Redis scripts, run directly', () => {
  let fleet: RedisFleet;
  let r: Redis;
  beforeAll(async () => {
    fleet = await RedisFleet.start(1);
    r = new Redis(fleet.urls[0]);
  });
  beforeEach(() => r.flushall());
  afterAll(async () => {
    r.disconnect();
    await fleet.stop();
  });
  const acq = (keys: string[], v: string, ttl: number, floor: number) =>
    r.eval(
      ACQUIRE,
      2 * keys.length,
      ...keys,
      ...keys.map((k) => `fence:${k}`),
      v,
      ttl,
      keys.length,
      floor,
    ) as Promise<number>;
  const permit = (
    key: string,
    limit: number,
    v: string,
    ttl: number,
    floor: number,
    start: number,
  ) => {
    const keys = Array.from({ length: limit }, (_, i) => (i === 0 ? key : `${key}#${i}`));
    return r.eval(
      ACQUIRE_PERMIT,
      2 * limit,
      ...keys,
      ...keys.map((k) => `fence:${k}`),
      v,
      ttl,
      limit,
      floor,
      start,
    );
  };

  it('ACQUIRE re-run answers the first run counter; other owner / force-release / expiry are never "ours"', async () => {
    const t1 = await acq(['k'], 'A', 10_000, 1000);
    expect(t1).toBe(1000);
    expect(await acq(['k'], 'A', 10_000, 1000)).toBe(1000); // the re-sent copy
    expect(await r.pttl('k')).toBeLessThanOrEqual(10_000);
    expect(await acq(['k'], 'B', 10_000, 2000)).toBe(-1); // another owner
    // force-release between the copies: the re-sent copy is a fresh grant above the forced counter
    await r.eval(FORCE_RELEASE, 2, 'k', 'fence:k', 5000, 0);
    expect(Number(await r.get('fence:k'))).toBe(5000);
    const t2 = await acq(['k'], 'A', 10_000, 1000);
    expect(t2).toBe(5001);
    // expiry between copies, with another holder in between
    await r.flushall();
    expect(await acq(['e'], 'A', 50, 1000)).toBe(1000);
    await new Promise((res) => setTimeout(res, 80));
    expect(await acq(['e'], 'B', 10_000, 1000)).toBe(1001);
    expect(await acq(['e'], 'A', 50, 1000)).toBe(-1);
    await r.del('e');
    expect(await acq(['e'], 'A', 50, 1000)).toBe(1002);
    // wrong type key
    await r.hset('h', 'f', 'A');
    expect(await acq(['h'], 'A', 1000, 1)).toBe(-1);
    await r.sadd('s', 'A');
    expect(await acq(['s', 'k2'], 'A', 1000, 1)).toBe(-1);
  });

  it('multi-key ACQUIRE re-run: max counter; a key force-released between copies: refused, and the other key not left held by nobody', async () => {
    await r.set('fence:b', '7000');
    expect(await acq(['a', 'b'], 'A', 10_000, 1000)).toBe(7001);
    expect(await acq(['a', 'b'], 'A', 10_000, 1000)).toBe(7001);
    await r.eval(FORCE_RELEASE, 2, 'b', 'fence:b', 0, 0);
    // the re-sent copy is refused (the backend undoes nothing on a refusing instance): it must not
    // leave 'a' held with our value for the TTL, nobody holding it
    expect(await acq(['a', 'b'], 'A', 10_000, 1000)).toBe(-1);
    expect(await r.get('a')).toBeNull();
    expect(await r.get('b')).toBeNull();
    // a refusal by another owner still deletes nothing of theirs
    expect(await acq(['a', 'b'], 'B', 10_000, 1000)).toBeGreaterThan(0);
    expect(await acq(['b', 'a'], 'A', 10_000, 1000)).toBe(-1);
    expect(await r.get('a')).toBe('B');
    expect(await r.get('b')).toBe('B');
  });

  it('CLAIM: re-run 1, other owner 0, wrong type 0', async () => {
    expect(await r.eval(CLAIM, 1, 'c', 'A', 10_000)).toBe(1);
    expect(await r.eval(CLAIM, 1, 'c', 'A', 10_000)).toBe(1);
    expect(await r.eval(CLAIM, 1, 'c', 'B', 10_000)).toBe(0);
    await r.lpush('l', 'A');
    expect(await r.eval(CLAIM, 1, 'l', 'A', 10_000)).toBe(0);
  });

  it('ACQUIRE_PERMIT: re-run answers the same permit; all held -> -1; wrong types held; limit 100', async () => {
    const a = (await permit('p', 3, 'A', 10_000, 1000, 1)) as number[];
    expect(a).toEqual([1, 1000]);
    expect(await permit('p', 3, 'A', 10_000, 1000, 2)).toEqual([1, 1000]);
    expect(await permit('p', 3, 'B', 10_000, 1000, 1)).toEqual([2, 1000]);
    expect(await permit('p', 3, 'C', 10_000, 1000, 1)).toEqual([0, 1000]);
    expect(await permit('p', 3, 'D', 10_000, 1000, 0)).toBe(-1);
    expect(await r.keys('p*')).toHaveLength(3);
    // wrong-type permits count as held, never ours, never overwritten
    await r.flushall();
    await r.hset('q', 'x', 'A');
    await r.sadd('q#1', 'A');
    expect(await permit('q', 3, 'A', 10_000, 1, 0)).toEqual([2, 1]);
    expect(await r.type('q')).toBe('hash');
    expect(await permit('q', 3, 'B', 10_000, 1, 0)).toBe(-1);
    // limit 100, every permit held: -1 and nothing written
    await r.flushall();
    for (let i = 0; i < 100; i += 1)
      expect(await permit('big', 100, `v${i}`, 10_000, 1, i)).toEqual([i, 1]);
    const before = await r.dbsize();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 200; i += 1)
      expect(await permit('big', 100, 'late', 10_000, 1, i % 100)).toBe(-1);
    const perCall = Number(process.hrtime.bigint() - t0) / 200 / 1e3;
    expect(await r.dbsize()).toBe(before);
    // re-run of the holder of the last permit answers it
    expect(await permit('big', 100, 'v99', 10_000, 1, 3)).toEqual([99, 1]);
    await r.config('SET', 'slowlog-log-slower-than', '0');
    await r.slowlog('RESET');
    await permit('big', 100, 'late', 10_000, 1, 0);
    const log = (await r.slowlog('GET', 5)) as Array<[number, number, number, string[]]>;

    console.log(
      `limit 100 all-held: ${perCall.toFixed(0)} µs per round trip; slowlog µs:`,
      log.map((e) => `${e[3][0]}:${e[2]}`),
    );
  });
});
