/** Re-sent acquisitions across a reset, beyond test/resend.e2e-spec.ts: several instances, a first copy counted failed, force-release between the copies. */
import { Redis } from 'ioredis';
import { FORCE_RELEASE } from '@app/distributed-lock/redis/lock.scripts';
import { RedisFleet } from './support/redis-fleet';
import { lockApp, type LockApp } from './support/lock-app';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('re-sent acquisitions across replicas and resets', () => {
  let fleet: RedisFleet;
  let inspect: Redis[];
  let clients: Redis[] = [];
  let app: LockApp | undefined;

  beforeAll(async () => {
    fleet = await RedisFleet.start(3);
    inspect = fleet.urls.map((u) => new Redis(u));
  });
  beforeEach(() => Promise.all(inspect.map((r) => r.flushall())));
  afterEach(async () => {
    await app?.close();
    app = undefined;
    clients.forEach((c) => c.disconnect());
    clients = [];
  });
  afterAll(async () => {
    inspect.forEach((r) => r.disconnect());
    await fleet.stop();
  });

  const make = async (n: number, opts: Record<string, unknown> = {}) => {
    clients = fleet.urls.slice(0, n).map((u) => new Redis(u, { lazyConnect: true, ...opts }));
    await Promise.all(clients.map((c) => c.connect()));
  };

  /** Pauses the replies of clients `which`, runs `op`, waits until Redis ran it there, resets them. */
  async function acrossReset<T>(which: number[], key: string, op: () => Promise<T>): Promise<T> {
    const written = async () => {
      for (const i of which) if ((await inspect[i].keys(key)).length === 0) return false;
      return true;
    };
    which.forEach((i) => clients[i].stream.pause());
    const outcome = op();
    for (let k = 0; k < 200 && !(await written()); k += 1) await sleep(5);
    expect(await written()).toBe(true);
    which.forEach((i) => clients[i].stream.destroy());
    return outcome;
  }

  it('3 instances, 2 reset: the re-sent copies make the majority; the token is above an earlier holder', async () => {
    await make(3);
    app = await lockApp({ clients, commandTimeout: 2_000 });
    const { locks } = app;
    // earlier holders raise the counters (different on each instance)
    const first = await locks.acquire('x', { ttl: 1_000 });
    const t0 = first.fencingToken;
    await first.release();
    await inspect[2].set('fence:lock:x', String(t0 + 10_000_000_000));
    const prev = await locks.acquire('x', { ttl: 1_000 });
    const t1 = prev.fencingToken;
    expect(t1).toBeGreaterThan(t0);
    await prev.release();
    const lock = await acrossReset([0, 1], 'lock:x', () => locks.tryAcquire('x', { ttl: 10_000 }));
    expect(lock).not.toBeNull();
    expect(lock!.fencingToken).toBeGreaterThan(t1);
    // every instance that holds it agrees with the token (the write-back reached them)
    await sleep(100);
    for (const r of inspect)
      expect(Number(await r.get('fence:lock:x'))).toBeGreaterThanOrEqual(lock!.fencingToken);
    await lock!.release();
    await sleep(100);
    for (const r of inspect) expect(await r.exists('lock:x')).toBe(0);
  });

  it('first copy counted failed (reconnect slower than commandTimeout): refused, then no key held by nobody', async () => {
    await make(1, { retryStrategy: () => 1_500 });
    app = await lockApp({ clients, commandTimeout: 400 });
    const { locks } = app;
    await (await locks.acquire('warm', { ttl: 1_000 })).release();
    const outcome = await acrossReset([0], 'lock:slow', () =>
      locks.tryAcquire('slow', { ttl: 20_000 }),
    ).catch((e: unknown) => e);
    expect(outcome === null || outcome instanceof Error).toBe(true);
    // after the reconnect: the re-sent copy ran, then the undo
    for (let k = 0; k < 100 && clients[0].status !== 'ready'; k += 1) await sleep(50);
    await sleep(300);
    expect(await inspect[0].exists('lock:slow')).toBe(0);
    // and the key is free for the next caller
    const next = await locks.tryAcquire('slow', { ttl: 1_000 });
    expect(next).not.toBeNull();
    await next!.release();
  });

  it('first copy counted failed, limited: no permit left held by nobody', async () => {
    await make(1, { retryStrategy: () => 1_500 });
    app = await lockApp({ clients, commandTimeout: 400 });
    const { locks } = app;
    await (await locks.acquire('warm', { ttl: 1_000 })).release();
    const outcome = await acrossReset([0], 'lock:slowlim*', () =>
      locks.tryAcquire('slowlim', { ttl: 20_000, limit: 3 }),
    ).catch((e: unknown) => e);
    expect(outcome === null || outcome instanceof Error).toBe(true);
    for (let k = 0; k < 100 && clients[0].status !== 'ready'; k += 1) await sleep(50);
    await sleep(300);
    expect(await inspect[0].keys('lock:slowlim*')).toEqual([]);
  });

  it('a limited acquisition across a reset is granted', async () => {
    await make(1);
    app = await lockApp({ clients, commandTimeout: 2_000 });
    const { locks } = app;
    await (await locks.acquire('warm', { ttl: 1_000 })).release();
    for (let round = 0; round < 5; round += 1) {
      const lock = await acrossReset([0], 'lock:lim*', () =>
        locks.tryAcquire('lim', { ttl: 10_000, limit: 3 }),
      );
      expect(lock).not.toBeNull();
      expect(await inspect[0].keys('lock:lim*')).toHaveLength(1);
      const counters = await inspect[0].keys('fence:lock:lim*');
      const values = await Promise.all(counters.map((k) => inspect[0].get(k)));
      expect(values.map(Number)).toContain(lock!.fencingToken);
      await lock!.release();
      expect(await inspect[0].keys('lock:lim*')).toHaveLength(0);
    }
  });

  it('two-key acquisition, one key force-released between the copies: no key left held by nobody', async () => {
    await make(1);
    app = await lockApp({ clients, commandTimeout: 2_000 });
    const { locks } = app;
    await (await locks.acquire('warm', { ttl: 1_000 })).release();
    clients[0].stream.pause();
    const outcome = locks.tryAcquire(['fa', 'fb'], { ttl: 20_000 }).catch((e: unknown) => e);
    for (let k = 0; k < 200 && (await inspect[0].exists('lock:fa', 'lock:fb')) < 2; k += 1)
      await sleep(5);
    expect(await inspect[0].exists('lock:fa', 'lock:fb')).toBe(2);
    // LockAdmin.forceRelease('fb') as it runs it, between the first copy and the re-sent one
    expect(await inspect[0].eval(FORCE_RELEASE, 2, 'lock:fb', 'fence:lock:fb', 0, '0')).toBe(1);
    clients[0].stream.destroy();
    const got = await outcome;
    expect(got).toBeNull(); // refused: 'fb' is no longer ours
    // nobody holds 'fa' now: it must not stay taken for its 20 s TTL
    expect(await inspect[0].exists('lock:fa')).toBe(0);
    const other = await locks.tryAcquire('fa', { ttl: 1_000 });
    expect(other).not.toBeNull();
    await other!.release();
  });
});
