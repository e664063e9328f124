import { inspect } from 'node:util';
import {
  LockBusyError,
  LockLostError,
  LockUnavailableError,
  type Lock,
} from '@app/distributed-lock';
import { RedisFleet } from './support/redis-fleet';
import {
  aborted,
  closeAll,
  delay,
  inspectors,
  lockApp,
  since,
  type LockApp,
} from './support/lock-app';

describe('LockService on three Redis instances', () => {
  let fleet: RedisFleet;
  const apps: LockApp[] = [];
  const replica = async (
    extra: Parameters<typeof lockApp>[0] extends infer O ? Partial<O> : never = {},
  ) => {
    const a = await lockApp({ connections: fleet.urls, ...extra });
    apps.push(a);
    return a.locks;
  };

  beforeAll(async () => {
    fleet = await RedisFleet.start(3);
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
    await fleet.heal();
  });
  afterAll(async () => {
    await fleet.stop();
  });

  it('never lets two replicas inside the same critical section', async () => {
    const replicas = await Promise.all([replica(), replica(), replica()]);
    let inside = 0;
    let maxInside = 0;
    let runs = 0;
    const perReplica = 40;
    await Promise.all(
      replicas.flatMap((locks) =>
        Array.from({ length: perReplica }, () =>
          locks.runExclusive(
            'exclusion',
            async () => {
              inside += 1;
              maxInside = Math.max(maxInside, inside);
              await delay(Math.random() * 3);
              inside -= 1;
              runs += 1;
            },
            { ttl: 2_000, wait: 60_000, retry: { delay: 2, maxDelay: 20 } },
          ),
        ),
      ),
    );
    expect(maxInside).toBe(1);
    expect(runs).toBe(replicas.length * perReplica);
  });

  it("never deletes or extends someone else's lock", async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    const lockA = await a.acquire('owned', { ttl: 150 });
    await delay(250);
    expect(lockA.signal.aborted).toBe(true);
    const lockB = await b.acquire('owned', { ttl: 10_000 });
    await expect(lockA.release()).rejects.toBeInstanceOf(LockLostError);
    await expect(lockA.extend()).rejects.toBeInstanceOf(LockLostError);
    expect(await b.isLocked('owned')).toBe(true);
    expect(await b.tryAcquire('owned')).toBeNull();
    await lockB.release();
    expect(await b.isLocked('owned')).toBe(false);
  });

  it('release is idempotent and frees the key for the next owner', async () => {
    const locks = await replica();
    const lock = await locks.acquire(['multi:a', 'multi:b']);
    expect(lock.keys).toEqual(['multi:a', 'multi:b']);
    expect(await locks.tryAcquire('multi:b')).toBeNull();
    const first = lock.release();
    expect(lock.release()).toBe(first);
    await first;
    expect(lock.signal.aborted).toBe(true);
    const next = await locks.tryAcquire(['multi:a', 'multi:b']);
    expect(next).not.toBeNull();
    await next!.release();
  });

  it('auto-extends while the work runs three times the TTL', async () => {
    const [holder, contender] = await Promise.all([replica(), replica()]);
    let stolen = 0;
    let polls = 0;
    let signalDuringWork: boolean | undefined;
    await holder.runExclusive(
      'long-job',
      async (lock) => {
        const end = Date.now() + 3_000;
        while (Date.now() < end) {
          polls += 1;
          const other = await contender.tryAcquire('long-job', { ttl: 1_000 });
          if (other) {
            stolen += 1;
            await other.release();
          }
          await delay(30);
        }
        signalDuringWork = lock.signal.aborted;
      },
      { ttl: 1_000 },
    );
    expect(polls).toBeGreaterThan(10);
    expect(stolen).toBe(0);
    expect(signalDuringWork).toBe(false);
    expect(await contender.isLocked('long-job')).toBe(false);
  });

  it('aborts the signal when the keys disappear under the holder', async () => {
    const locks = await replica();
    const admin = inspectors(fleet.urls);
    try {
      let seen: Lock | undefined;
      const reason = await locks.runExclusive(
        'vanishing',
        async (lock) => {
          seen = lock;
          await Promise.all(admin.map((c) => c.flushall()));
          await new Promise((r) => lock.signal.addEventListener('abort', r, { once: true }));
          return lock.signal.reason as unknown;
        },
        { ttl: 300 },
      );
      expect(seen?.signal.aborted).toBe(true);
      expect(reason).toBeInstanceOf(LockLostError);
    } finally {
      await closeAll(admin);
    }
  });

  it('aborts the signal by its deadline when the majority dies under the holder', async () => {
    const locks = await replica();
    const startedWall = Date.now();
    const started = performance.now();
    const lock = await locks.acquire('orphan', { ttl: 400 });
    // The local deadline is computed to fall before the keys can expire in Redis (ttl counted
    // from before the request left); the abort timer then fires at that deadline. A timer can be
    // late on a loaded machine, so the deadline is checked by value and the abort by a loose bound.
    expect(lock.expiresAt).toBeLessThanOrEqual(startedWall + 400);
    await Promise.all([fleet.nodes[0].kill(), fleet.nodes[1].kill()]);
    await expect(lock.extend()).rejects.toBeInstanceOf(LockUnavailableError);
    expect(await aborted(lock.signal, 2_000)).toBeInstanceOf(LockLostError);
    expect(since(started)).toBeLessThan(2_000);
    expect(lock.expiresAt).toBeLessThanOrEqual(Date.now());
  });

  it('keeps working with one of three instances down', async () => {
    const locks = await replica();
    await fleet.nodes[2].kill();
    const lock = await locks.acquire('minority-down');
    expect(await locks.tryAcquire('minority-down')).toBeNull();
    await lock.extend();
    await lock.release();
    expect(await locks.runExclusive('minority-down', () => 42)).toBe(42);
  });

  it.each([
    ['killed', (f: RedisFleet) => Promise.all([f.nodes[0].kill(), f.nodes[1].kill()])],
    [
      'paused',
      (f: RedisFleet) => {
        f.nodes[0].pause();
        f.nodes[1].pause();
        return Promise.resolve();
      },
    ],
  ])('fails fast and closed with two of three instances %s', async (_how, fault) => {
    const locks = await replica();
    await fault(fleet);
    let ran = false;
    for (const attempt of [
      () => locks.tryAcquire('majority-down'),
      () => locks.acquire('majority-down', { wait: 5_000 }),
      () =>
        locks.runExclusive('majority-down', () => {
          ran = true;
        }),
    ]) {
      const start = performance.now();
      const error = await attempt().then(
        (v) => v,
        (e: unknown) => e,
      );
      // "About a second", never the 90 s default-ioredis hang; wide margin for a shared CI machine.
      expect(since(start)).toBeLessThan(3_000);
      expect(error).toBeInstanceOf(LockUnavailableError);
      expect((error as LockUnavailableError).votes).toMatchObject({ total: 3, quorum: 2 });
    }
    expect(ran).toBe(false);
    await expect(locks.isLocked('majority-down')).rejects.toBeInstanceOf(LockUnavailableError);
  });

  it('tells busy from unavailable, and recovers when instances come back', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    const held = await a.acquire('recover', { ttl: 5_000 });
    await expect(b.acquire('recover', { wait: 0 })).rejects.toBeInstanceOf(LockBusyError);
    await held.release();
    await Promise.all([fleet.nodes[0].kill(), fleet.nodes[1].kill()]);
    await expect(b.tryAcquire('recover')).rejects.toBeInstanceOf(LockUnavailableError);
    await fleet.heal();
    const deadline = Date.now() + 10_000;
    let lock: Lock | null = null;
    while (!lock && Date.now() < deadline) {
      lock = await b.tryAcquire('recover').catch(() => null);
      if (!lock) await delay(100);
    }
    expect(lock).not.toBeNull();
    await lock!.release();
  });

  it('never puts tokens or credentials in errors', async () => {
    const locks = await replica();
    const lock = await locks.acquire('secret');
    const [admin] = inspectors([fleet.urls[2]]);
    const value = await admin.get('lock:secret');
    await closeAll([admin]);
    // The stored value is `<secret>/<identity>`: the secret part must never appear in an error.
    expect(value).toMatch(/^[0-9a-f]{32}\/.+$/);
    const token = value!.slice(0, 32);
    await Promise.all([fleet.nodes[0].kill(), fleet.nodes[1].kill()]);
    const errors = [
      await locks.tryAcquire('other').catch((e: unknown) => e),
      await lock.extend().catch((e: unknown) => e),
      await lock.release().catch((e: unknown) => e),
    ];
    for (const error of errors) {
      expect(error).toBeInstanceOf(LockUnavailableError);
      const dump = inspect(error, { depth: 20, showHidden: true });
      // No live client, no connection options, no lock value anywhere in the error graph.
      expect(dump).not.toMatch(/Redis \{|retryStrategy|connectTimeout|ExecutionError/);
      expect(dump).not.toContain(token);
    }
  });

  it('keeps the lock at least lockAtLeastFor, and stops extending at lockAtMostFor', async () => {
    const [holder, other] = await Promise.all([replica(), replica()]);
    await holder.runExclusive('at-least', () => 'quick', { lockAtLeastFor: 1_200 });
    expect(await other.tryAcquire('at-least')).toBeNull();
    await delay(1_300);
    const next = await other.tryAcquire('at-least');
    expect(next).not.toBeNull();
    await next!.release();

    const t0 = performance.now();
    let lostAfter = 0;
    await holder.runExclusive(
      'at-most',
      async (lock) => {
        await new Promise((r) => lock.signal.addEventListener('abort', r, { once: true }));
        lostAfter = since(t0);
      },
      { ttl: 1_000, lockAtMostFor: 2_500 },
    );
    // Extended past the TTL (twice), then let go at lockAtMostFor (less the drift allowance).
    expect(lostAfter).toBeGreaterThanOrEqual(2_400);
    expect(lostAfter).toBeLessThan(4_000);
  });
});
