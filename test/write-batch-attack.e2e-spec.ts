/**
 * Attacks on the Redis write batch (write-batch.ts) with real redis-server processes: faults while
 * sockets are corked, borrowed clients used by the user in the same turn, long synchronous work.
 */
import { Redis } from 'ioredis';
import { RedisFleet } from './support/redis-fleet';
import { lockApp, type LockApp } from './support/lock-app';
import type { LockService } from '@app/distributed-lock';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Load {
  stop(): Promise<Stats>;
  stats: Stats;
}
interface Stats {
  ok: number;
  errors: Map<string, number>;
  overlaps: number;
  tokenRegressions: number;
  okAt: number[];
  errAt: number[];
  slowest: number;
}

/** `workers` loops of acquire → check exclusivity in-process → release, over `keys` keys. */
function load(locks: LockService, workers: number, keys: number, ttl = 5_000): Load {
  const stats: Stats = {
    ok: 0,
    errors: new Map(),
    overlaps: 0,
    tokenRegressions: 0,
    okAt: [],
    errAt: [],
    slowest: 0,
  };
  const holders = new Map<string, number>();
  const lastToken = new Map<string, number>();
  let running = true;
  const loops = Array.from({ length: workers }, async (_, w) => {
    let n = 0;
    while (running) {
      const key = `atk:${(w + n++) % keys}`;
      const t0 = performance.now();
      try {
        const lock = await locks.acquire(key, { ttl, wait: 2_000 });
        if ((holders.get(key) ?? 0) > 0) stats.overlaps += 1;
        holders.set(key, (holders.get(key) ?? 0) + 1);
        if (lock.fencingToken <= (lastToken.get(key) ?? 0)) stats.tokenRegressions += 1;
        lastToken.set(key, lock.fencingToken);
        await new Promise((r) => setImmediate(r));
        holders.set(key, holders.get(key)! - 1);
        await lock.release();
        stats.ok += 1;
        stats.okAt.push(performance.now());
      } catch (e) {
        const name = (e as Error).name;
        stats.errors.set(name, (stats.errors.get(name) ?? 0) + 1);
        stats.errAt.push(performance.now());
        if ((holders.get(key) ?? 0) > 0 && name !== 'LockLostError') {
          /* acquisition failed: we were not a holder */
        }
        await sleep(20);
      }
      stats.slowest = Math.max(stats.slowest, performance.now() - t0);
    }
  });
  return {
    stats,
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return stats;
    },
  };
}

async function lockKeys(urls: string[]): Promise<string[][]> {
  const out: string[][] = [];
  for (const u of urls) {
    const c = new Redis(u, { maxRetriesPerRequest: 1 });
    out.push((await c.keys('*atk:*')).filter((k) => !k.includes('fence:')));
    c.disconnect();
  }
  return out;
}

const corkedCount = (c: Redis) =>
  (c.stream as unknown as { writableCorked?: number } | undefined)?.writableCorked ?? 0;

const summary = (s: Stats) =>
  JSON.stringify({
    ok: s.ok,
    errors: Object.fromEntries(s.errors),
    overlaps: s.overlaps,
    tokenRegressions: s.tokenRegressions,
    slowest: Math.round(s.slowest),
  });

describe('write batch under faults', () => {
  let fleet: RedisFleet;
  let clients: Redis[] = [];
  let app: LockApp | undefined;
  const commandTimeout = 500;

  beforeAll(async () => {
    fleet = await RedisFleet.start(3);
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    for (const c of clients) c.disconnect();
    clients = [];
    await fleet.heal();
  });
  afterAll(async () => {
    await fleet.stop();
  });

  async function boot(n = 3, extra: Record<string, unknown> = {}) {
    clients = fleet.urls.slice(0, n).map(
      (u) =>
        new Redis(u, {
          lazyConnect: true,
          enableOfflineQueue: false,
          commandTimeout: 5_000,
          ...extra,
        }),
    );
    await Promise.all(clients.map((c) => c.connect()));
    app = await lockApp({ clients, commandTimeout });
    await (await app.locks.acquire('atk:warm', { ttl: 1_000 })).release();
  }

  it('SIGSTOP of one of three instances at concurrency 64: work goes on, resumes after SIGCONT', async () => {
    await boot(3);
    const l = load(app!.locks, 64, 16);
    await sleep(500);
    const before = l.stats.ok;
    const pausedAt = performance.now();
    fleet.nodes[0].pause();
    await sleep(2_000);
    const duringPause = l.stats.ok - before;
    fleet.nodes[0].resume();
    const resumedAt = performance.now();
    await sleep(1_000);
    const s = await l.stop();
    const afterResume = s.okAt.filter((t) => t > resumedAt).length;
    const firstOkAfterPause = s.okAt.find((t) => t > pausedAt + commandTimeout);
    console.log('SIGSTOP 1/3', summary(s), {
      duringPause,
      afterResume,
      before,
      firstOkAfterPauseMs: firstOkAfterPause && Math.round(firstOkAfterPause - pausedAt),
    });
    expect(s.overlaps).toBe(0);
    expect(s.tokenRegressions).toBe(0);
    expect(duringPause).toBeGreaterThan(0);
    expect(afterResume).toBeGreaterThan(0);
    await sleep(300);
    expect(await lockKeys(fleet.urls)).toEqual([[], [], []]);
    expect(clients.map(corkedCount)).toEqual([0, 0, 0]);
  });

  it('SIGSTOP of the only instance at concurrency 64: detected in about commandTimeout, resumes', async () => {
    await boot(1);
    const l = load(app!.locks, 64, 16);
    await sleep(500);
    const pausedAt = performance.now();
    fleet.nodes[0].pause();
    await sleep(1_500);
    fleet.nodes[0].resume();
    const resumedAt = performance.now();
    await sleep(1_000);
    const s = await l.stop();
    const firstErr = s.errAt.find((t) => t > pausedAt);
    const afterResume = s.okAt.filter((t) => t > resumedAt).length;
    const detectMs = firstErr === undefined ? -1 : Math.round(firstErr - pausedAt);
    console.log('SIGSTOP 1/1', summary(s), { detectMs, afterResume });
    expect(detectMs).toBeGreaterThan(0);
    expect(detectMs).toBeLessThan(commandTimeout * 3);
    expect(afterResume).toBeGreaterThan(0);
    expect(s.overlaps).toBe(0);
    await sleep(300);
    expect(await lockKeys(fleet.urls.slice(0, 1))).toEqual([[]]);
    expect(corkedCount(clients[0])).toBe(0);
  });

  it('kill + restart of an instance while commands are corked: nothing hangs, new stream not corked', async () => {
    await boot(3);
    const l = load(app!.locks, 64, 16);
    await sleep(800);
    await fleet.nodes[1].kill();
    await sleep(500);
    await fleet.nodes[1].start();
    await sleep(2_000);
    const restartedAt = performance.now();
    await sleep(1_000);
    const s = await l.stop();
    console.log('kill+restart', summary(s), {
      afterRestart: s.okAt.filter((t) => t > restartedAt).length,
      status: clients.map((c) => c.status),
      corked: clients.map(corkedCount),
    });
    expect(s.overlaps).toBe(0);
    expect(s.slowest).toBeLessThan(8_000);
    expect(clients.map((c) => c.status)).toEqual(['ready', 'ready', 'ready']);
    expect(clients.map(corkedCount)).toEqual([0, 0, 0]);
    await sleep(300);
    expect(await lockKeys(fleet.urls)).toEqual([[], [], []]);
  });

  it('connection reset (CLIENT KILL) mid-load: old stream uncorked, new one not corked, work goes on', async () => {
    await boot(1);
    const admin = new Redis(fleet.urls[0]);
    const l = load(app!.locks, 64, 16);
    await sleep(500);
    const oldStreams: unknown[] = [];
    for (let k = 0; k < 5; k += 1) {
      oldStreams.push(clients[0].stream);
      await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await sleep(400);
    }
    const lastKill = performance.now();
    await sleep(1_000);
    const s = await l.stop();
    admin.disconnect();
    const oldCorked = oldStreams.map((x) => (x as { writableCorked: number }).writableCorked);
    console.log('CLIENT KILL', summary(s), {
      oldCorked,
      afterLastKill: s.okAt.filter((t) => t > lastKill).length,
    });
    expect(oldCorked.every((c) => c === 0)).toBe(true);
    expect(corkedCount(clients[0])).toBe(0);
    expect(s.okAt.filter((t) => t > lastKill).length).toBeGreaterThan(0);
    expect(s.overlaps).toBe(0);
    // ioredis re-sent what each reset left unanswered: the scripts count their own attempts, so
    // nothing is left held by nobody (test/resend.e2e-spec.ts).
    await sleep(300);
    expect(await lockKeys(fleet.urls.slice(0, 1))).toEqual([[]]);
  });

  it.each([
    ['disconnect()', false],
    ['disconnect(true) (reconnect)', true],
  ])('client.%s while commands sit corked: every call settles', async (_, reconnect) => {
    await boot(1);
    const c = clients[0];
    const locks = app!.locks;
    const stream = c.stream as unknown as { cork: () => void };
    const cork = stream.cork.bind(c.stream);
    let armed = true;
    let corkedWhenDisconnected = -1;
    stream.cork = () => {
      cork();
      if (!armed) return;
      armed = false;
      // Runs after the command that corked was written into the corked buffer, before the uncork tick.
      queueMicrotask(() => {
        corkedWhenDisconnected = corkedCount(c);
        c.disconnect(reconnect);
      });
    };
    const all = Array.from({ length: 32 }, (_, w) =>
      locks.acquire(`atk:d${reconnect ? 'r' : 'c'}${w}`, { ttl: 3_000 }).then((l) => l.release()),
    );
    const settled = await Promise.race([
      Promise.allSettled(all).then((r) => r.map((x) => x.status)),
      sleep(8_000).then(() => 'hung'),
    ]);
    const counts = Array.isArray(settled)
      ? {
          fulfilled: settled.filter((x) => x === 'fulfilled').length,
          rejected: settled.filter((x) => x === 'rejected').length,
        }
      : settled;
    console.log('disconnect while corked', _, { corkedWhenDisconnected, counts, status: c.status });
    expect(corkedWhenDisconnected).toBeGreaterThan(0);
    expect(settled).not.toBe('hung');
    if (reconnect) {
      await sleep(500);
      expect(c.status).toBe('ready');
      expect(corkedCount(c)).toBe(0);
      const left = (await lockKeys(fleet.urls.slice(0, 1)))[0].filter((k) => k.includes('atk:dr'));
      expect(left).toEqual([]);
    }
  });

  it.each([
    ['disconnect()', false],
    ['disconnect(true) (reconnect)', true],
  ])(
    'client.%s after the 16th socket write (no cork involved): every call settles',
    async (_, reconnect) => {
      await boot(1);
      const c = clients[0];
      const locks = app!.locks;
      const stream = c.stream as unknown as { write: (...a: unknown[]) => boolean };
      const write = stream.write.bind(c.stream);
      let writes = 0;
      stream.write = (...a: unknown[]) => {
        writes += 1;
        if (writes === 16) queueMicrotask(() => c.disconnect(reconnect));
        return write(...a);
      };
      const all = Array.from({ length: 32 }, (_, w) =>
        locks.acquire(`atk:w${reconnect ? 'r' : 'c'}${w}`, { ttl: 3_000 }).then((l) => l.release()),
      );
      const settled = await Promise.race([
        Promise.allSettled(all),
        sleep(8_000).then(() => 'hung' as const),
      ]);
      const counts =
        settled === 'hung'
          ? settled
          : {
              fulfilled: settled.filter((x) => x.status === 'fulfilled').length,
              rejected: settled.filter((x) => x.status === 'rejected').length,
              first:
                settled.find((x) => x.status === 'rejected') &&
                String(
                  (settled.find((x) => x.status === 'rejected') as PromiseRejectedResult).reason,
                ),
            };
      await sleep(500);
      const left = [
        (await lockKeys(fleet.urls.slice(0, 1)))[0].filter((k) =>
          k.includes(`atk:w${reconnect ? 'r' : 'c'}`),
        ),
      ];
      console.log('disconnect after writes', _, {
        writes,
        counts,
        status: c.status,
        left: left[0].length,
      });
      expect(settled).not.toBe('hung');
      if (reconnect) expect(left).toEqual([[]]);
    },
  );

  it("borrowed client: the user's own commands in the same turn go out and answer", async () => {
    await boot(1);
    const c = clients[0];
    const locks = app!.locks;
    const l = load(locks, 32, 8);
    await sleep(300);
    let userOk = 0;
    let worst = 0;
    for (let k = 0; k < 200; k += 1) {
      const t0 = performance.now();
      await Promise.all([
        c.set(`user:${k}`, 'v'),
        c.get(`user:${k}`),
        locks.tryAcquire(`atk:u${k % 4}`, { ttl: 1_000 }).then((x) => x?.release()),
      ]);
      worst = Math.max(worst, performance.now() - t0);
      userOk += 1;
    }
    const s = await l.stop();
    console.log('borrowed user commands', { userOk, worst: Math.round(worst) }, summary(s));
    expect(userOk).toBe(200);
    expect(corkedCount(c)).toBe(0);
  });

  it('user who corks the same socket and uncorks on the next tick: no write held', async () => {
    await boot(1);
    const c = clients[0];
    const l = load(app!.locks, 32, 8);
    await sleep(300);
    for (let k = 0; k < 100; k += 1) {
      c.stream.cork();
      const p = c.get('x');
      process.nextTick(() => c.stream.uncork());
      await Promise.race([
        p,
        sleep(2_000).then(() => {
          throw new Error('user command held');
        }),
      ]);
    }
    const s = await l.stop();
    console.log('user cork', summary(s), { corked: corkedCount(c) });
    expect(corkedCount(c)).toBe(0);
    expect(s.overlaps).toBe(0);
  });

  it('long synchronous work after acquisitions were sent: validity never exceeds the TTL left in Redis', async () => {
    await boot(3);
    const locks = app!.locks;
    const inspect = fleet.urls.map((u) => new Redis(u));
    const l = load(locks, 32, 8);
    await sleep(300);
    const bad: Array<{ remaining: number; pttl: number[] }> = [];
    let checked = 0;
    /** The library's validity left must not exceed the TTL left in Redis on a majority. */
    const check = async (got: Array<{ keys: string[] }>) => {
      for (const lock of got) {
        const remaining = (lock as unknown as { remaining(): number }).remaining();
        const pttl = await Promise.all(
          inspect.map((r) => r.pttl(`lock:${lock.keys[0]}`).catch(() => -3)),
        );
        const byMajority = [...pttl].sort((a, b) => b - a)[1];
        if (remaining > byMajority + 2) bad.push({ remaining, pttl });
        checked += 1;
      }
    };
    for (let k = 0; k < 4; k += 1) {
      const p = Promise.all(
        Array.from({ length: 8 }, (_, w) => locks.acquire(`atk:long${k}:${w}`, { ttl: 1_500 })),
      );
      const until = performance.now() + 400;
      while (performance.now() < until) {
        /* burn the turn */
      }
      const got = await p;
      await check(got);
      const ext = Promise.all(got.map((x) => x.extend(1_500)));
      const until2 = performance.now() + 400;
      while (performance.now() < until2) {
        /* burn the turn again, extensions written (corked) */
      }
      await ext;
      await check(got);
      await Promise.all(got.map((x) => x.release()));
    }
    const s = await l.stop();
    for (const r of inspect) r.disconnect();
    console.log(
      'long sync work',
      { checked, bad: bad.length, sample: bad.slice(0, 3) },
      summary(s),
    );
    expect(bad).toEqual([]);
  });
});
