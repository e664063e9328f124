import { Cluster } from 'ioredis';
import { InvalidLockArgumentError, type Lock, type LockService } from '@app/distributed-lock';
import { delay, lockApp, since, type LockApp } from './support/lock-app';
import { RedisClusterFleet } from './support/redis-cluster';

/** Resolves once `cluster` has loaded the slot map, or rejects after `timeoutMs`. */
function ready(cluster: Cluster, timeoutMs = 5_000): Promise<void> {
  if (cluster.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cluster.off('ready', onReady);
      reject(new Error(`Cluster client not ready after ${timeoutMs} ms (${cluster.status})`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    cluster.once('ready', onReady);
  });
}

/** The error `promise` rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, but the call resolved');
}

describe('on a real Redis Cluster (3 masters)', () => {
  let fleet: RedisClusterFleet;
  let cluster: Cluster;
  let app: LockApp;
  let locks: LockService;

  beforeAll(async () => {
    fleet = await RedisClusterFleet.start(3);
    cluster = new Cluster(fleet.startupNodes, {
      enableOfflineQueue: false,
      redisOptions: { commandTimeout: 1_000 },
    });
    await ready(cluster);
    app = await lockApp({ clients: [cluster] });
    locks = app.locks;
  }, 30_000);

  afterAll(async () => {
    await app?.close();
    // The module never closes borrowed clients.
    await cluster?.quit().catch(() => cluster.disconnect());
    await fleet?.stop();
  });

  /** The hash slot of `key`, as the cluster computes it. */
  const slotOf = (key: string): Promise<number> => cluster.cluster('KEYSLOT', key);

  /** Keys containing `text` on any master (whatever the library names its keys). */
  async function keysMentioning(text: string): Promise<string[]> {
    const found = await Promise.all(cluster.nodes('master').map((node) => node.keys(`*${text}*`)));
    return found.flat();
  }

  /**
   * Acquire `key`, check it is busy for everyone else, release it, check it is free, then acquire it
   * again. Returns both fencing tokens.
   */
  async function cycle(key: string): Promise<[number, number]> {
    const first = await locks.acquire(key);
    expect(first.keys).toEqual([key]);
    expect(first.fencingToken).toBeGreaterThan(0);
    expect(Number.isSafeInteger(first.fencingToken)).toBe(true);
    expect(await locks.isLocked(key)).toBe(true);
    expect(await locks.tryAcquire(key)).toBeNull();
    await first.release();
    expect(await locks.isLocked(key)).toBe(false);

    const second = await locks.acquire(key);
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
    await second.release();
    expect(await locks.isLocked(key)).toBe(false);
    return [first.fencingToken, second.fencingToken];
  }

  it('locks an untagged key (the @Exclusive default ClassName.methodName)', async () => {
    await cycle('Reports.nightly');
  });

  it('locks a key with a {hash tag}', async () => {
    await cycle('{tenant-7}:invoice');
  });

  it('locks 50 distinct untagged keys spread over every master', async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `job-${i}`);
    const owners = new Set(
      await Promise.all(keys.map(async (k) => fleet.portOfSlot(await slotOf(k)))),
    );
    expect(owners.size).toBe(3);

    // allSettled: a failing key must not leave the others running into the next test.
    const results = await Promise.allSettled(keys.map((k) => cycle(k)));
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0) {
      const first = failed[0].reason as Error;
      throw new Error(`${failed.length} of ${keys.length} keys failed; first: ${first.message}`, {
        cause: first,
      });
    }
    for (const key of keys) expect(await locks.isLocked(key)).toBe(false);
  });

  it('locks several keys together when they share a {hash tag}', async () => {
    const keys = ['{order-1}:a', '{order-1}:b'];
    const lock = await locks.acquire(keys);
    expect(lock.keys).toEqual(keys);
    expect(lock.fencingToken).toBeGreaterThan(0);
    for (const key of keys) {
      expect(await locks.isLocked(key)).toBe(true);
      expect(await locks.tryAcquire(key)).toBeNull();
    }
    expect(await locks.tryAcquire(keys)).toBeNull();
    await lock.release();
    for (const key of keys) expect(await locks.isLocked(key)).toBe(false);

    const again = await locks.acquire(keys);
    expect(again.fencingToken).toBeGreaterThan(lock.fencingToken);
    await again.release();
  });

  it('rejects several keys in different slots with InvalidLockArgumentError, touching nothing', async () => {
    const keys = ['alpha', 'beta'];
    const [a, b] = await Promise.all(keys.map((k) => slotOf(k)));
    expect(a).not.toBe(b);

    const work = jest.fn();
    for (const attempt of [
      () => locks.acquire(keys),
      () => locks.tryAcquire(keys),
      () => locks.runExclusive(keys, work),
    ]) {
      const error = await rejection(attempt());
      // The message first: on failure it shows what was thrown instead.
      expect((error as Error).message).toMatch(/hash tag/i);
      expect(error).toBeInstanceOf(InvalidLockArgumentError);
    }
    expect(work).not.toHaveBeenCalled();

    for (const key of keys) expect(await locks.isLocked(key)).toBe(false);
    expect(await keysMentioning('alpha')).toEqual([]);
    expect(await keysMentioning('beta')).toEqual([]);
  });

  it('keeps extending an untagged lock while runExclusive work outlives its ttl', async () => {
    const key = 'Reports.weekly';
    const started = performance.now();
    const token = await locks.runExclusive(
      key,
      async (lock: Lock) => {
        await delay(1_200);
        // Past the 1 s ttl: only extension keeps it held.
        expect(await locks.tryAcquire(key)).toBeNull();
        await delay(1_200);
        expect(lock.signal.aborted).toBe(false);
        expect(await locks.isLocked(key)).toBe(true);
        expect(lock.expiresAt).toBeGreaterThan(Date.now());
        return lock.fencingToken;
      },
      { ttl: 1_000 },
    );
    expect(token).toBeGreaterThan(0);
    expect(since(started)).toBeGreaterThanOrEqual(2_400);
    expect(await locks.isLocked(key)).toBe(false);
  });

  it('works through a Cluster client with its own ioredis keyPrefix (part of the hashed key)', async () => {
    // ioredis puts `app:` in front of every key: the counter's hash tag must include it.
    const prefixed = new Cluster(fleet.startupNodes, {
      keyPrefix: 'app:',
      enableOfflineQueue: false,
      redisOptions: { commandTimeout: 1_000 },
    });
    await ready(prefixed);
    const other = await lockApp({ clients: [prefixed] });
    try {
      const first = await other.locks.acquire('Jobs.nightly');
      expect(first.fencingToken).toBeGreaterThan(0);
      expect(await other.locks.tryAcquire('Jobs.nightly')).toBeNull();
      await first.release();
      const second = await other.locks.acquire('Jobs.nightly');
      expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
      await second.release();
      // The lock is gone; its counter stays, in the lock key's slot (the tag covers the prefix).
      expect(await keysMentioning('app:lock:Jobs.nightly')).toEqual([
        'app:fence:{app:lock:Jobs.nightly}',
      ]);
    } finally {
      await other.close();
      await prefixed.quit().catch(() => prefixed.disconnect());
    }
  });
});
