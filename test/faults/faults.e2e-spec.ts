/**
 * Fault-injection suite: real redis-server processes, worker child processes, and checkers that
 * can see a broken lock. `npm run reliability` renders the figures into docs/RELIABILITY.md.
 */
import type { Redis } from 'ioredis';
import { LockUnavailableError } from '@app/distributed-lock';
import { FaultProxy } from '../support/fault-proxy';
import { RedisFleet } from '../support/redis-fleet';
import { closeAll, delay, inspectors, lockApp, type LockApp } from '../support/lock-app';
import { startReplica, stopReplica, type Replica } from '../support/replicas';
import { reportRow } from '../support/reliability-report';
import { addStats, FENCED_WRITE, type RunStats } from './checkers';

type Message = {
  result?: unknown;
  error?: string;
  holding?: boolean;
  token?: number;
  accepted?: boolean;
};

function next(worker: Replica, pick: (m: Message) => boolean): Promise<Message> {
  return new Promise((resolve, reject) => {
    const on = (m: Message) => {
      if (!pick(m)) return;
      worker.child.off('message', on);
      if (m.error) reject(new Error(m.error));
      else resolve(m);
    };
    worker.child.on('message', on);
  });
}

/** Apps a test opened; closed after each test even when an assertion failed (or jest never exits). */
const openApps: LockApp[] = [];
const opened = (app: LockApp): LockApp => {
  openApps.push(app);
  return app;
};
afterEach(async () => {
  await Promise.all(openApps.splice(0).map((a) => a.close().catch(() => undefined)));
});

const row = (
  scenario: string,
  operations: string,
  faults: string,
  violations: number,
  notes: string,
) => reportRow({ scenario, operations, faults, violations, notes });

describe('fault injection (3 Redis instances, 4 worker processes)', () => {
  let fleet: RedisFleet;
  let resourceFleet: RedisFleet;
  let resource: Redis;
  let workers: Replica[] = [];

  const run = async (
    key: string,
    opts: Partial<{
      runs: number;
      ttl: number;
      autoExtend: boolean;
      workMs: number;
      wait: number;
    }> = {},
  ) => {
    const command = {
      op: 'run',
      key,
      runs: 100,
      ttl: 2_000,
      autoExtend: true,
      workMs: 2,
      wait: 30_000,
      ...opts,
    };
    const results = await Promise.all(
      workers.map((w) => {
        const answer = next(w, (m) => 'result' in m || 'error' in m);
        w.child.send(command);
        return answer.then((m) => m.result as RunStats);
      }),
    );
    const total = addStats(results);
    const counter = Number((await resource.get(`ctr:${key}`)) ?? 0);
    return { ...total, lostUpdates: total.runs - counter };
  };

  /**
   * Waits until every worker's own lock clients reach all instances again (each client reconnects
   * on its own backoff, up to 1 s after a long outage): asks each worker for its backend's health.
   */
  const workersReconnected = async (ms = 10_000) => {
    const deadline = performance.now() + ms;
    for (;;) {
      const ups = await Promise.all(
        workers.map((w) => {
          const answer = next(w, (m) => 'result' in m || 'error' in m);
          w.child.send({ op: 'health' });
          return answer.then((m) => (m.result as { up: number }).up);
        }),
      );
      if (ups.every((up) => up === fleet.nodes.length)) return;
      if (performance.now() > deadline) {
        throw new Error(`instances each worker reaches: ${ups.join(', ')}`);
      }
      await delay(25);
    }
  };

  beforeAll(async () => {
    [fleet, resourceFleet] = await Promise.all([RedisFleet.start(3), RedisFleet.start(1)]);
    [resource] = inspectors(resourceFleet.urls);
    workers = await Promise.all(
      Array.from({ length: 4 }, () =>
        startReplica('../faults/worker', {
          REDIS_URLS: fleet.urls.join(','),
          RESOURCE_URL: resourceFleet.urls[0],
        }),
      ),
    );
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => stopReplica(w, 'SIGKILL')));
    await closeAll([resource]);
    await fleet.stop();
    await resourceFleet.stop();
  });

  it('the checker sees a broken lock (TTL 20 ms, work up to 40 ms, no extension)', async () => {
    const r = await run('broken', { runs: 50, ttl: 20, autoExtend: false, workMs: 40 });
    const seen = r.violations + r.lostUpdates;
    row(
      'checker self-test: broken configuration',
      `${r.runs} sections`,
      'TTL shorter than the work, no extension',
      seen,
      'must be > 0: proves the checkers can fail',
    );
    expect(seen).toBeGreaterThan(0);
  });

  it('exclusion under load: no lost or overlapping update', async () => {
    const r = await run('load', { runs: 150 });
    row(
      'exclusion under load',
      `${r.runs} sections, one hot key`,
      'none',
      r.violations + r.lostUpdates + r.rejected,
      `${r.errors} errors`,
    );
    expect(r).toMatchObject({ runs: 600, violations: 0, lostUpdates: 0, rejected: 0, errors: 0 });
  });

  it('minority failure: one of three instances killed mid-run', async () => {
    const running = run('minority', { runs: 150 });
    await delay(300);
    await fleet.nodes[2].kill();
    const r = await running;
    row(
      'minority failure',
      `${r.runs} sections`,
      '1 of 3 instances SIGKILLed mid-run',
      r.violations + r.lostUpdates + r.rejected,
      `${r.unavailable} unavailable, ${r.errors} errors`,
    );
    expect(r).toMatchObject({
      violations: 0,
      lostUpdates: 0,
      rejected: 0,
      unavailable: 0,
      runs: 600,
    });
    await fleet.nodes[2].start();
    // Its clients reconnect on their own backoff (up to 1 s after a long outage): the next tests
    // kill or pause other instances and count on this one being back.
    await workersReconnected();
  });

  it('majority failure: every acquire fails fast with LockUnavailableError and no work runs', async () => {
    await Promise.all([fleet.nodes[0].kill(), fleet.nodes[1].kill()]);
    const before = Number((await resource.get('ctr:majority')) ?? 0);
    const r = await run('majority', { runs: 5 });
    const worst = Math.max(...r.unavailableMs);
    row(
      'majority failure',
      `${r.unavailable} acquisitions`,
      '2 of 3 instances SIGKILLed',
      r.runs,
      `all failed closed; time to detect: worst ${worst.toFixed(0)} ms`,
    );
    expect(r).toMatchObject({ runs: 0, unavailable: 20 });
    expect(worst).toBeLessThan(3_000);
    expect(Number((await resource.get('ctr:majority')) ?? 0)).toBe(before);

    // Recovery: restart them (empty) and work resumes by itself.
    await Promise.all([fleet.nodes[0].start(), fleet.nodes[1].start()]);
    await workersReconnected();
    const after = await run('majority', { runs: 25 });
    row(
      'recovery',
      `${after.runs} sections`,
      'the 2 instances restarted (empty)',
      after.violations + after.lostUpdates + after.rejected,
      'work resumed without intervention',
    );
    expect(after).toMatchObject({ runs: 100, violations: 0, lostUpdates: 0, rejected: 0 });
  });

  it('paused Redis: one instance SIGSTOPped longer than the command timeout', async () => {
    await workersReconnected(); // only the pause is the fault here
    const running = run('paused-redis', { runs: 100 });
    await delay(200);
    fleet.nodes[0].pause();
    await delay(1_500);
    fleet.nodes[0].resume();
    const r = await running;
    row(
      'paused Redis instance',
      `${r.runs} sections`,
      '1 of 3 instances SIGSTOPped 1.5 s',
      r.violations + r.lostUpdates + r.rejected,
      `${r.unavailable} unavailable, no hang`,
    );
    expect(r).toMatchObject({
      runs: 400,
      violations: 0,
      lostUpdates: 0,
      rejected: 0,
      unavailable: 0,
    });
  });

  it('paused holder: a frozen holder is taken over with a larger token, sees its signal aborted, and its late write is fenced off', async () => {
    const [a] = workers;
    const holding = next(a, (m) => m.holding === true);
    const done = next(a, (m) => 'result' in m || 'error' in m);
    a.child.send({ op: 'hold', key: 'frozen', ttl: 1_000 });
    const h = await holding;
    expect(h.accepted).toBe(true);
    const frozenAt = Date.now();
    a.child.kill('SIGSTOP');
    try {
      const b = opened(await lockApp({ connections: fleet.urls }));
      const lock = await b.locks.acquire('frozen', { wait: 5_000, ttl: 30_000 });
      const takeoverMs = Date.now() - frozenAt;
      expect(lock.fencingToken).toBeGreaterThan(h.token!);
      expect(await resource.eval(FENCED_WRITE, 1, 'fence-store:frozen', lock.fencingToken)).toBe(1);
      a.child.kill('SIGCONT');
      const result = (await done).result as {
        abortedOnResume: boolean;
        lateWriteAccepted: boolean;
      };
      row(
        'paused holder',
        '1 takeover',
        'holder SIGSTOPped past its 1000 ms TTL',
        result.lateWriteAccepted ? 1 : 0,
        `takeover after ${takeoverMs} ms with a larger token; resumed holder saw signal.aborted=${result.abortedOnResume}; its late write was rejected by the fence`,
      );
      expect(result).toEqual({ abortedOnResume: true, lateWriteAccepted: false, token: h.token });
      await lock.release();
    } finally {
      a.child.kill('SIGCONT');
    }
  });
});

describe('latency and data loss (in-process replicas)', () => {
  let resourceFleet: RedisFleet;
  let resource: Redis;
  const fenced = async (key: string, token: number) =>
    (await resource.eval(FENCED_WRITE, 1, `fence-store:${key}`, token)) === 1;

  beforeAll(async () => {
    resourceFleet = await RedisFleet.start(1);
    [resource] = inspectors(resourceFleet.urls);
  });
  afterAll(async () => {
    await closeAll([resource]);
    await resourceFleet.stop();
  });

  it('accounts for slow replies in validity, and refuses a lock that would arrive nearly expired', async () => {
    const fleet = await RedisFleet.start(1);
    const proxy = await FaultProxy.start(fleet.nodes[0].port);
    const app = opened(await lockApp({ connections: [proxy.url], commandTimeout: 1_000 }));
    try {
      proxy.latencyMs = 75; // ~150 ms per round trip
      const t0 = Date.now();
      const lock = await app.locks.acquire('slow', { ttl: 500 });
      const returned = Date.now();
      const elapsed = returned - t0;
      expect(elapsed).toBeGreaterThanOrEqual(140);
      // Validity is counted from before the request was sent: what is left at return is at most the
      // TTL minus the time the round trip took.
      expect(lock.expiresAt - t0).toBeLessThanOrEqual(500);
      expect(lock.expiresAt - returned).toBeLessThanOrEqual(500 - elapsed + 1);
      expect(lock.expiresAt).toBeGreaterThan(returned);
      await lock.release();

      proxy.latencyMs = 240; // ~480 ms per round trip: a 500 ms lock would arrive with ~10 ms left
      const error = await app.locks.tryAcquire('slower', { ttl: 500 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockUnavailableError);
      expect((error as Error).message).toMatch(/only -?\d+ ms of the 500 ms TTL remained/);
      proxy.latencyMs = 0;
      await delay(600);
      expect(await app.locks.isLocked('slower')).toBe(false);
      row(
        'latency (validity accounting)',
        '2 acquisitions',
        '+150 ms and +480 ms per round trip, TTL 500 ms',
        0,
        `expiresAt reduced by the ${elapsed} ms the reply took; the 480 ms one was refused and released, never returned`,
      );
    } finally {
      await proxy.stop();
      await fleet.stop();
    }
  });

  it('keeps exclusion with one instance slow (50-200 ms jitter) and its connections reset', async () => {
    const fleet = await RedisFleet.start(3);
    const proxy = await FaultProxy.start(fleet.nodes[0].port);
    const urls = [proxy.url, fleet.urls[1], fleet.urls[2]];
    const apps = (
      await Promise.all([lockApp({ connections: urls }), lockApp({ connections: urls })])
    ).map(opened);
    try {
      proxy.latencyMs = 50;
      proxy.jitterMs = 150;
      let inside = 0;
      let overlaps = 0;
      let runs = 0;
      const resets = setInterval(() => proxy.drop(), 250);
      await Promise.all(
        apps.flatMap((a) =>
          Array.from({ length: 4 }, async () => {
            for (let i = 0; i < 40; i += 1) {
              await a.locks.runExclusive(
                'jitter',
                async () => {
                  inside += 1;
                  if (inside > 1) overlaps += 1;
                  await delay(1);
                  inside -= 1;
                  runs += 1;
                },
                { wait: 30_000, retry: { delay: 2, maxDelay: 20 } },
              );
            }
          }),
        ),
      );
      clearInterval(resets);
      row(
        'slow and flapping instance',
        `${runs} sections`,
        '1 of 3 behind a proxy: 50-200 ms jitter, connections reset every 250 ms',
        overlaps,
        'the quorum of the two healthy instances carries on',
      );
      expect({ runs, overlaps }).toEqual({ runs: 320, overlaps: 0 });
    } finally {
      await proxy.stop();
      await fleet.stop();
    }
  });

  it('an instance restarting empty at once can grant the lock twice; the fence rejects the stale writer', async () => {
    const fleet = await RedisFleet.start(3);
    try {
      await fleet.nodes[2].kill();
      const a = opened(await lockApp({ connections: fleet.urls }));
      const lockA = await a.locks.acquire('lost', { ttl: 10_000 }); // granted by instances 0 and 1
      await fleet.nodes[2].start();
      await fleet.nodes[1].restart(); // no persistence: A's key on instance 1 is gone, at once
      const b = opened(await lockApp({ connections: fleet.urls }));
      const lockB = await b.locks.acquire('lost', { wait: 0 }); // instances 1 and 2: a double grant
      expect(lockA.signal.aborted).toBe(false);
      expect(lockB.fencingToken).not.toBe(lockA.fencingToken);
      // Both believe they hold it; the protected resource decides by token.
      const writes = [
        await fenced('lost', lockA.fencingToken),
        await fenced('lost', lockB.fencingToken),
        await fenced('lost', lockA.fencingToken),
      ];
      expect(writes.filter((w) => !w)).toHaveLength(1);
      row(
        'data loss: immediate restart',
        '2 holders',
        'instance restarted empty while the lock was held (no persistence)',
        0,
        `double grant happened (expected, documented); the fence kept token ${Math.max(lockA.fencingToken, lockB.fencingToken)} and rejected the stale writer`,
      );
    } finally {
      await fleet.stop();
    }
  });

  it('an instance restarted only after the longest TTL cannot cause a double grant', async () => {
    const fleet = await RedisFleet.start(3);
    try {
      await fleet.nodes[2].kill();
      const a = opened(await lockApp({ connections: fleet.urls }));
      const lockA = await a.locks.acquire('lost-later', { ttl: 1_000 });
      await fleet.nodes[1].kill();
      await delay(1_100); // the delayed-restart rule: stay down at least the longest TTL
      await Promise.all([fleet.nodes[1].start(), fleet.nodes[2].start()]);
      const b = opened(await lockApp({ connections: fleet.urls }));
      const lockB = await b.locks.acquire('lost-later', { wait: 0 });
      expect(lockA.expiresAt).toBeLessThanOrEqual(Date.now());
      expect(lockA.signal.aborted).toBe(true);
      row(
        'data loss: delayed restart',
        '2 holders in sequence',
        'instance down longer than the TTL, then restarted empty',
        0,
        'the first lock had expired (signal aborted) before the second was granted: no overlap',
      );
      await lockB.release();
    } finally {
      await fleet.stop();
    }
  });
});
