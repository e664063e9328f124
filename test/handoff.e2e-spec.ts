/**
 * Hand-off: a waiter is woken by the holder's release (pub/sub), not by its backoff timer; a lost
 * wake-up costs latency, never the lock; every connection the module creates for waiting is closed
 * on shutdown, and borrowed clients are never put in subscriber mode. Speed itself is measured by
 * `npm run bench:handoff` (docs/HANDOFF.md), not here.
 */
import { Redis } from 'ioredis';
import { RedisFleet } from './support/redis-fleet';
import {
  closeAll,
  delay,
  eventually,
  inspectors,
  lockApp,
  since,
  type LockApp,
} from './support/lock-app';

describe('hand-off between waiters (3 instances)', () => {
  let fleet: RedisFleet;
  const apps: LockApp[] = [];
  const open = async (options: Parameters<typeof lockApp>[0]) => {
    const app = await lockApp(options);
    apps.push(app);
    return app;
  };

  beforeAll(async () => {
    fleet = await RedisFleet.start(3);
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close().catch(() => undefined)));
  });
  afterAll(async () => {
    await fleet.stop();
  });

  it('wakes a waiter on release long before its 6 s backoff would', async () => {
    const holder = await open({ connections: fleet.urls });
    const waiter = await open({
      connections: fleet.urls,
      retry: { delay: 6_000, maxDelay: 6_000 },
    });
    // Warm the channel once so this measures a steady-state wait, then hold for real.
    const warm = await holder.locks.acquire('handoff', { ttl: 10_000 });
    const first = waiter.locks.acquire('handoff', { wait: 15_000, ttl: 10_000 });
    await delay(100);
    await warm.release();
    await (await first).release();

    const lock = await holder.locks.acquire('handoff', { ttl: 10_000 });
    const waiting = waiter.locks.acquire('handoff', { wait: 15_000, ttl: 10_000 });
    await delay(200);
    const released = performance.now();
    await lock.release();
    const next = await waiting;
    const handoffMs = since(released);
    expect(handoffMs).toBeLessThan(3_000); // the backoff alone would take 4.5-7.5 s
    expect(next.fencingToken).toBeGreaterThan(lock.fencingToken);
    await next.release();
  });

  it('leaves no backoff timer running once a woken waiter has the lock', async () => {
    const holder = await open({ connections: fleet.urls });
    const waiter = await open({ connections: fleet.urls });
    // Timers of the waiter's 6 s backoff: armed while it waits, and still armed after the hand-off
    // unless cleared (each would keep a process that is shutting down alive for up to 6 s).
    const armed = new Set<unknown>();
    const cleared = new Set<unknown>();
    const set = jest.spyOn(global, 'setTimeout');
    const clear = jest.spyOn(global, 'clearTimeout');
    try {
      for (const key of ['no-timer-first', 'no-timer-again']) {
        const lock = await holder.locks.acquire(key, { ttl: 10_000 });
        const waiting = waiter.locks.acquire(key, {
          wait: 15_000,
          retry: { delay: 6_000, maxDelay: 6_000, jitter: 0 },
        });
        await delay(200);
        await lock.release();
        await (await waiting).release();
      }
      set.mock.calls.forEach(([, ms], i) => {
        if (ms === 6_000) armed.add(set.mock.results[i].value); // the backoff (jitter 0)
      });
      for (const [timer] of clear.mock.calls) cleared.add(timer);
      expect(armed.size).toBeGreaterThanOrEqual(2); // one per wait: the test sees the backoff
      expect({
        armed: armed.size,
        stillArmed: [...armed].filter((t) => !cleared.has(t)).length,
      }).toEqual({ armed: armed.size, stillArmed: 0 });
    } finally {
      set.mockRestore();
      clear.mockRestore();
    }
  });

  it('still gets a lock that expired instead of being released (nothing is announced): the poll covers it', async () => {
    const holder = await open({ connections: fleet.urls });
    const waiter = await open({ connections: fleet.urls, retry: { delay: 50, maxDelay: 100 } });
    const t0 = performance.now();
    await holder.locks.acquire('expires', { ttl: 400 }); // never released
    const lock = await waiter.locks.acquire('expires', { wait: 5_000 });
    // Granted only once the key expired: at least the TTL after the holder's request went out.
    expect(since(t0)).toBeGreaterThanOrEqual(390);
    await lock.release();
  });

  it('closes the subscriber connections it created on shutdown', async () => {
    const [admin] = inspectors([fleet.urls[0]]);
    const clients = async () =>
      String(await admin.client('LIST'))
        .trim()
        .split('\n').length;
    const before = await clients();
    const app = await lockApp({ connections: fleet.urls });
    const lock = await app.locks.acquire('subs', { ttl: 5_000 });
    const other = await lockApp({ connections: fleet.urls, logger: false });
    const waiting = other.locks.acquire('subs', { wait: 5_000 });
    const subscribed = async () =>
      (String(await admin.client('LIST')).match(/cmd=subscribe/g) ?? []).length >= 1;
    expect(await eventually(subscribed, 5_000)).toBe(true);
    await lock.release();
    await (await waiting).release();
    await other.close();
    await app.close();
    // Closed connections leave the server's list once it reads their FIN: poll, boundedly.
    await eventually(async () => (await clients()) === before, 5_000);
    expect(await clients()).toBe(before);
    await closeAll([admin]);
  });

  it('never puts a borrowed client in subscriber mode, and leaves it open', async () => {
    const borrowed = fleet.urls.map(
      (u) => new Redis(u, { enableOfflineQueue: false, commandTimeout: 500, lazyConnect: true }),
    );
    await Promise.all(borrowed.map((c) => c.connect()));
    const holder = await open({ connections: fleet.urls });
    const app = await lockApp({ clients: borrowed });
    const lock = await holder.locks.acquire('borrowed', { ttl: 5_000 });
    const waiting = app.locks.acquire('borrowed', {
      wait: 15_000,
      retry: { delay: 6_000, maxDelay: 6_000 },
    });
    await delay(200);
    const released = performance.now();
    await lock.release();
    await (await waiting).release();
    // Woken through a subscriber the module duplicated from the borrowed client, not the 6 s poll.
    expect(since(released)).toBeLessThan(3_000);
    await app.close();
    for (const c of borrowed) {
      expect(c.status).toBe('ready');
      expect(await c.ping()).toBe('PONG'); // a client in subscriber mode would refuse PING's reply shape
      expect(await c.set('borrowed:check', '1')).toBe('OK');
    }
    await closeAll(borrowed);
  });

  it.each(['killed', 'frozen'])(
    'wakes a waiter on release while one instance is %s (a majority still announces it)',
    async (how) => {
      const holder = await open({ connections: fleet.urls });
      const waiter = await open({ connections: fleet.urls });
      try {
        const lock = await holder.locks.acquire(`minority-${how}`, { ttl: 10_000 });
        if (how === 'killed') await fleet.nodes[2].kill();
        else fleet.nodes[2].pause();
        const waiting = waiter.locks.acquire(`minority-${how}`, {
          wait: 20_000,
          retry: { delay: 8_000, maxDelay: 8_000, jitter: 0 },
        });
        await delay(300);
        const released = performance.now();
        await lock.release();
        await (await waiting).release();
        // Before the fix the first wait on the channel waited for every instance's SUBSCRIBE,
        // and the one down answered only at its command timeout (~5 s) or the 8 s poll.
        expect(since(released)).toBeLessThan(2_500);
      } finally {
        fleet.nodes[2].resume();
        await fleet.heal();
      }
    },
  );

  it('closes promptly while a waiter is still subscribing on a frozen instance', async () => {
    const holder = await open({ connections: fleet.urls });
    const app = await lockApp({ connections: fleet.urls });
    try {
      const lock = await holder.locks.acquire('subscribing-close', { ttl: 10_000 });
      fleet.nodes[2].pause(); // its SUBSCRIBE will not be confirmed
      const waiting = app.locks
        .acquire('subscribing-close', { wait: 20_000, retry: { delay: 6_000, maxDelay: 6_000 } })
        .catch((e: unknown) => e);
      await delay(300); // busy, now waiting for the first subscription
      const t0 = performance.now();
      await app.close();
      expect(since(t0)).toBeLessThan(3_000);
      expect(String(await waiting)).toMatch(/shutting down/);
      await lock.release();
    } finally {
      fleet.nodes[2].resume();
    }
  });

  it.each(['owned connections', 'borrowed clients without commandTimeout'])(
    'closes promptly with %s while one instance is frozen and a waiter sleeps',
    async (kind) => {
      const borrowed =
        kind === 'owned connections' ? undefined : fleet.urls.map((u) => new Redis(u));
      const holder = await open({ connections: fleet.urls });
      const app = await lockApp(borrowed ? { clients: borrowed } : { connections: fleet.urls });
      try {
        const lock = await holder.locks.acquire('frozen-close', { ttl: 5_000 });
        const waiting = app.locks.acquire('frozen-close', { wait: 5_000 }).catch((e: unknown) => e);
        await delay(200); // subscribed and sleeping
        fleet.nodes[2].pause();
        const t0 = performance.now();
        await app.close();
        // Before the fix: > 20 s (borrowed) and 10 s (owned), waiting on the frozen instance.
        expect(since(t0)).toBeLessThan(5_000);
        expect(String(await waiting)).toMatch(/shutting down/);
        await lock.release();
      } finally {
        fleet.nodes[2].resume();
        if (borrowed) await closeAll(borrowed);
      }
    },
  );
});
