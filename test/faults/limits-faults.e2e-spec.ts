/**
 * Fault injection for concurrency limits (docs/SAFETY.md, "Concurrency limits"): 4 worker processes
 * contend for a key with `limit: 2` on 3 real Redis instances while instances are killed, paused or
 * restarted, and a holder is frozen past its lease. The OCCUPY checker on a separate resource Redis
 * keeps the most holders ever inside at once; each permit has its own fenced store.
 */
import type { Redis } from 'ioredis';
import { permitKey } from '@app/distributed-lock/backend/held-key';
import { TAKE_PERMIT } from '@app/distributed-lock/redis/lock.scripts';
import { FENCED_WRITE, addStats, type RunStats } from './checkers';
import { RedisFleet } from '../support/redis-fleet';
import { closeAll, delay, inspectors, lockApp, type LockApp } from '../support/lock-app';
import { startReplica, stopReplica, type Replica } from '../support/replicas';

jest.setTimeout(120_000);

type Message = {
  result?: unknown;
  error?: string;
  holding?: boolean;
  token?: number;
  permit?: number;
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

const LIMIT = 2;

describe('concurrency limits under faults (limit 2, 3 Redis instances, 4 workers)', () => {
  let fleet: RedisFleet;
  let resourceFleet: RedisFleet;
  let resource: Redis;
  let workers: Replica[] = [];
  const apps: LockApp[] = [];

  const run = async (
    key: string,
    opts: Partial<{ runs: number; ttl: number; autoExtend: boolean; workMs: number }> = {},
  ) => {
    const command = {
      op: 'run',
      key,
      runs: 60,
      ttl: 2_000,
      autoExtend: true,
      workMs: 6,
      wait: 30_000,
      limit: LIMIT,
      ...opts,
    };
    const results = await Promise.all(
      workers.map((w) => {
        const answer = next(w, (m) => 'result' in m || 'error' in m);
        w.child.send(command);
        return answer.then((m) => m.result as RunStats);
      }),
    );
    const most = Number((await resource.get(`occ-max:${key}`)) ?? 0);
    return { ...addStats(results), most };
  };

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
      if (performance.now() > deadline) throw new Error(`instances reached: ${ups.join(', ')}`);
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

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close().catch(() => undefined)));
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => stopReplica(w, 'SIGKILL')));
    await closeAll([resource]);
    await fleet.stop();
    await resourceFleet.stop();
  });

  it('the checker sees a broken limit (TTL 20 ms, work up to 40 ms, no extension)', async () => {
    const r = await run('limit-broken', { runs: 30, ttl: 20, autoExtend: false, workMs: 40 });
    expect(r.most).toBeGreaterThan(LIMIT);
  });

  it('no faults: never more than 2 holders, 2 reached, every permit write accepted', async () => {
    const r = await run('limit-clean');
    expect(r).toMatchObject({ runs: 240, violations: 0, rejected: 0, errors: 0, unavailable: 0 });
    expect(r.most).toBe(LIMIT);
  });

  it('one of three instances killed mid-run', async () => {
    const running = run('limit-killed');
    await delay(250);
    await fleet.nodes[2].kill();
    const r = await running;
    expect(r).toMatchObject({ runs: 240, violations: 0, rejected: 0, errors: 0, unavailable: 0 });
    expect(r.most).toBeLessThanOrEqual(LIMIT);
    await fleet.nodes[2].start();
    await workersReconnected();
  });

  it('one instance SIGSTOPped longer than the command timeout', async () => {
    const running = run('limit-paused');
    await delay(200);
    fleet.nodes[0].pause();
    await delay(1_500);
    fleet.nodes[0].resume();
    const r = await running;
    expect(r).toMatchObject({ runs: 240, violations: 0, rejected: 0, errors: 0, unavailable: 0 });
    expect(r.most).toBeLessThanOrEqual(LIMIT);
    await workersReconnected();
  });

  it('one instance restarted (empty) midway, after the longest TTL', async () => {
    const running = run('limit-restarted', { runs: 120 });
    await delay(200);
    await fleet.nodes[1].kill();
    await delay(2_100); // the longest TTL (2000 ms): no grant it held can still count
    await fleet.nodes[1].start();
    const r = await running;
    expect(r).toMatchObject({ runs: 480, violations: 0, rejected: 0, errors: 0 });
    expect(r.most).toBeLessThanOrEqual(LIMIT);
    await workersReconnected();
  });

  it('3 replicas racing for the last permit: someone gets it every round (no split-vote starvation)', async () => {
    const replicas = await Promise.all([0, 1, 2].map(() => lockApp({ connections: fleet.urls })));
    apps.push(...replicas);
    const [holder] = replicas;
    for (let round = 0; round < 20; round += 1) {
      const k = `limit-race-${round}`;
      const held = [
        await holder.locks.acquire(k, { limit: 3, ttl: 10_000 }),
        await holder.locks.acquire(k, { limit: 3, ttl: 10_000 }),
      ];
      const won = (
        await Promise.all(replicas.map((r) => r.locks.tryAcquire(k, { limit: 3, ttl: 10_000 })))
      ).filter((l) => l !== null);
      expect(won).toHaveLength(1);
      for (const l of [...held, ...won]) await l.release();
    }
  });

  it('3 replicas racing for 3 free permits at once: all of them get one, on distinct permits', async () => {
    const replicas = await Promise.all([0, 1, 2].map(() => lockApp({ connections: fleet.urls })));
    apps.push(...replicas);
    let granted = 0;
    for (let round = 0; round < 20; round += 1) {
      const k = `limit-spread-${round}`;
      const won = (
        await Promise.all(replicas.map((r) => r.locks.tryAcquire(k, { limit: 3, ttl: 10_000 })))
      ).filter((l) => l !== null);
      expect(won.length).toBeGreaterThanOrEqual(1);
      expect(new Set(won.map((l) => l.permit)).size).toBe(won.length);
      granted += won.length;
      for (const l of won) await l.release();
    }
    // Contenders that split across permits settle (step 2) or retry after a pause: nearly all win.
    expect(granted).toBeGreaterThanOrEqual(57);
  });

  it('grants only a permit free on a majority when instances disagree, and leaves nothing behind', async () => {
    const direct = inspectors(fleet.urls);
    try {
      const k = 'limit-disagree';
      const slot = (p: number) => `lock:${permitKey(k, p)}`;
      // Another owner holds permit 0 on instances 0 and 2, permit 1 on instance 1 and 2: only
      // permit 2 is free on a majority. Attempts starting at permit 0 or 1 split (1 grant each of
      // three permits), settle on one in step 2, fail there, undo and retry.
      await direct[0].set(slot(0), 'other', 'PX', 30_000);
      await direct[1].set(slot(1), 'other', 'PX', 30_000);
      await direct[2].set(slot(0), 'other', 'PX', 30_000);
      await direct[2].set(slot(1), 'other', 'PX', 30_000);
      const b = await lockApp({ connections: fleet.urls });
      apps.push(b);
      for (let i = 0; i < 10; i += 1) {
        const lock = await b.locks.tryAcquire(k, { limit: 3, ttl: 10_000 });
        expect(lock?.permit).toBe(2);
        await lock!.release();
      }
      // Undone everywhere: only the other owner's keys are left.
      await delay(50);
      const left = await Promise.all(direct.map((c) => c.keys(`lock:${k}*`)));
      expect(left.map((keys) => keys.sort())).toEqual([
        [slot(0)],
        [slot(1)],
        [slot(0), slot(1)].sort(),
      ]);
      await direct[2].set(slot(2), 'other', 'PX', 30_000);
      await direct[0].set(slot(2), 'other', 'PX', 30_000);
      await expect(b.locks.tryAcquire(k, { limit: 3 })).resolves.toBeNull();
    } finally {
      await closeAll(direct);
    }
  });

  it('TAKE_PERMIT moves an attempt to the chosen permit, or only gives the others back', async () => {
    const [direct] = inspectors([fleet.urls[0]]);
    try {
      const keys = [0, 1, 2].map((p) => `take:${p}`);
      await direct.set(keys[2], 'mine', 'PX', 30_000);
      const moved = await direct.eval(
        TAKE_PERMIT,
        4,
        ...keys,
        'fence:take:1',
        'mine',
        30_000,
        2,
        0,
        '0',
      );
      expect(Number(moved)).toBeGreaterThan(0);
      expect(await direct.get(keys[1])).toBe('mine');
      expect(await direct.get(keys[2])).toBeNull();
      expect(await direct.get('fence:take:1')).toBe(String(moved));
      await direct.set(keys[0], 'other', 'PX', 30_000);
      const refused = await direct.eval(
        TAKE_PERMIT,
        4,
        ...keys,
        'fence:take:0',
        'mine',
        30_000,
        1,
        0,
        '0',
      );
      expect(refused).toBe(-1);
      expect(await direct.get(keys[1])).toBeNull();
      expect(await direct.get(keys[0])).toBe('other');
    } finally {
      await closeAll([direct]);
    }
  });

  it('a holder frozen past its lease: its permit is taken over with a larger token, its late write fenced off', async () => {
    const [a] = workers;
    const holding = next(a, (m) => m.holding === true);
    const done = next(a, (m) => 'result' in m || 'error' in m);
    a.child.send({ op: 'hold', key: 'limit-frozen', ttl: 1_000, limit: LIMIT });
    const h = await holding;
    expect(h.accepted).toBe(true);
    a.child.kill('SIGSTOP');
    try {
      const b = await lockApp({ connections: fleet.urls });
      apps.push(b);
      // While the frozen holder's lease runs, only one permit is free.
      const first = await b.locks.acquire('limit-frozen', { limit: LIMIT, ttl: 30_000 });
      expect(first.permit).not.toBe(h.permit);
      await expect(b.locks.tryAcquire('limit-frozen', { limit: LIMIT })).resolves.toBeNull();
      // Its lease expires: the permit is taken over, never a third holder.
      const second = await b.locks.acquire('limit-frozen', {
        limit: LIMIT,
        ttl: 30_000,
        wait: 5_000,
      });
      expect(second.permit).toBe(h.permit);
      expect(second.fencingToken).toBeGreaterThan(h.token!);
      await expect(b.locks.tryAcquire('limit-frozen', { limit: LIMIT })).resolves.toBeNull();
      const store = `fence-store:limit-frozen:${second.permit}`;
      expect(await resource.eval(FENCED_WRITE, 1, store, second.fencingToken)).toBe(1);
      a.child.kill('SIGCONT');
      const result = (await done).result as {
        abortedOnResume: boolean;
        lateWriteAccepted: boolean;
      };
      expect(result).toEqual({ abortedOnResume: true, lateWriteAccepted: false, token: h.token });
      await first.release();
      await second.release();
    } finally {
      a.child.kill('SIGCONT');
    }
  });
});
