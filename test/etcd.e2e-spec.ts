import { Etcd3 } from 'etcd3';
import { performance } from 'node:perf_hooks';
import { LockBusyError, LockUnavailableError, type Lock } from '@app/distributed-lock';
import { etcdBackend } from '@app/distributed-lock/etcd';
import { LockManager } from '@app/distributed-lock/lock-manager';
import { EtcdCluster } from './support/etcd-cluster';
import { startReplica, stopReplica } from './support/replicas';
import { aborted, delay, eventually, lockApp, since, type LockApp } from './support/lock-app';

/**
 * The etcd backend under faults, on real etcd members the harness starts (3, plus 1 for the wipe):
 * a killed leader, a paused majority, the whole cluster restarted on its data or wiped, lease
 * rounding, waiters woken by the delete watch, and a user-owned client.
 */
const COMMAND_TIMEOUT = 500;
let cluster: EtcdCluster;
let admin: Etcd3;
const apps: LockApp[] = [];
let seq = 0;
const key = (what: string) => `etcd-e2e:${(seq += 1)}:${what}`;

async function boot(options: Partial<Parameters<typeof etcdBackend>[0]> = {}): Promise<LockApp> {
  const replica = await lockApp({
    backend: etcdBackend({ hosts: cluster.hosts, commandTimeout: COMMAND_TIMEOUT, ...options }),
  });
  apps.push(replica);
  return replica;
}

/** The lease etcd holds `lock:<k>` under: its granted TTL (s) and what is left of it (s). */
async function leaseOf(k: string): Promise<{ granted: number; left: number }> {
  const kv = (await admin.kv.range({ key: Buffer.from(`lock:${k}`) })).kvs[0];
  const ttl = await admin.leaseClient.leaseTimeToLive({ ID: kv.lease });
  return { granted: Number(ttl.grantedTTL), left: Number(ttl.TTL) };
}

beforeAll(async () => {
  cluster = await EtcdCluster.start(3);
  admin = new Etcd3({ hosts: cluster.hosts });
});
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
  await cluster.heal();
});
afterAll(async () => {
  admin.close();
  await cluster.stop();
});

describe('etcd backend', () => {
  it('rounds a TTL up to whole seconds for the lease, and never promises more than asked or granted', async () => {
    const { locks } = await boot();
    const k = key('round');
    const before = Date.now();
    const lock = await locks.acquire(k, { ttl: 1_500 });
    expect(await leaseOf(k)).toMatchObject({ granted: 2 });
    expect(lock.expiresAt).toBeLessThanOrEqual(before + 1_500);
    expect(lock.expiresAt).toBeGreaterThan(before + 1_000);
    await lock.release();

    // Below the server's minimum (1 s with these election timeouts): the lease is what etcd grants,
    // the holder's deadline still the TTL asked for.
    const short = key('short');
    const start = Date.now();
    const tiny = await locks.acquire(short, { ttl: 300 });
    expect((await leaseOf(short)).granted).toBeGreaterThanOrEqual(1);
    expect(tiny.expiresAt).toBeLessThanOrEqual(start + 300);
    await aborted(tiny.signal, 1_000);
    await expect(tiny.extend()).rejects.toThrow(/lost/);

    // An extension to a TTL of another number of seconds moves the keys to a new lease.
    const moved = await locks.acquire(k, { ttl: 1_000 });
    const token = moved.fencingToken;
    await moved.extend(3_000);
    expect(await leaseOf(k)).toMatchObject({ granted: 3 });
    expect(moved.fencingToken).toBe(token);
    await expect(locks.tryAcquire(k)).resolves.toBeNull();
    await moved.release();
    expect(await locks.isLocked(k)).toBe(false);
  });

  it('wakes a waiter on release through the delete watch, well before its retry delay', async () => {
    const { locks } = await boot();
    const k = key('handoff');
    const held = await locks.acquire(k, { ttl: 10_000 });
    const waiter = locks.acquire(k, { wait: 10_000, retry: { delay: 3_000, maxDelay: 3_000 } });
    await delay(200); // the waiter has found it busy and watches
    const released = performance.now();
    await held.release();
    const next = await waiter;
    const handoff = since(released);
    expect(handoff).toBeLessThan(1_000);
    expect(next.fencingToken).toBeGreaterThan(held.fencingToken);
    await next.release();
    console.log(`etcd: hand-off from release to the waiter's grant ${handoff.toFixed(1)} ms`);
  });

  it('never closes a client the user passed in', async () => {
    const client = new Etcd3({ hosts: cluster.hosts });
    try {
      const replica = await boot({ client, hosts: undefined });
      const k = key('user-client');
      const lock = await replica.locks.acquire(k);
      expect(await client.get(`lock:${k}`).exists()).toBe(true);
      await lock.release();
      apps.splice(apps.indexOf(replica), 1);
      await replica.close();
      await client.put(`etcd-e2e:after-close`).value('still open');
      expect(await client.get('etcd-e2e:after-close').string()).toBe('still open');
    } finally {
      client.close();
    }
  });

  it('keeps locking when the leader member is killed, with tokens still increasing', async () => {
    const { locks } = await boot();
    const k = key('leader');
    const before = await locks.acquire(k);
    await before.release();
    const leader = await cluster.leader();
    await leader.kill();
    const killed = performance.now();
    let after: Lock | undefined;
    // The first calls may land on the old leader or in the election; within a few seconds it works.
    expect(
      await eventually(async () => {
        after = (await locks.tryAcquire(k).catch(() => undefined)) ?? undefined;
        return after !== undefined;
      }, 5_000),
    ).toBe(true);
    const recovered = since(killed);
    expect(after!.fencingToken).toBeGreaterThan(before.fencingToken);
    await after!.release();
    // And it goes on: ten lock/unlock rounds in a row without an error.
    for (let i = 0; i < 10; i += 1) {
      await locks.runExclusive(k, () => undefined);
    }
    console.log(`etcd: leader killed, locking back after ${Math.round(recovered)} ms`);
  });

  it('routes around one paused member: at most the first call that meets it fails', async () => {
    const { locks } = await boot();
    const leader = await cluster.leader();
    const follower = cluster.members.find((m) => m !== leader)!;
    follower.pause();
    let failed = 0;
    const start = performance.now();
    for (let i = 0; i < 20; i += 1) {
      try {
        await locks.runExclusive(key('one-paused'), () => undefined);
      } catch (error) {
        expect(error).toBeInstanceOf(LockUnavailableError);
        failed += 1;
      }
    }
    const took = since(start);
    // Each call that meets the paused member waits out commandTimeout; it is then skipped.
    expect(failed).toBeLessThanOrEqual(2);
    console.log(
      `etcd: 1 of 3 paused: ${failed} of 20 lock rounds failed, ${Math.round(took)} ms in all`,
    );
  });

  it('with 2 of 3 members paused: the holder signal aborts before its lease ends, acquisitions fail fast, and it recovers', async () => {
    const { locks } = await boot();
    const held = key('held');
    const ttl = 2_000;
    let expiresAtPause = 0;
    let abortedAt = 0;
    let paused = 0;
    const run = locks.runExclusive(
      held,
      async (lock) => {
        await delay(300); // extended at least once meanwhile? no matter: the deadline is what counts
        expiresAtPause = lock.expiresAt;
        cluster.members[0].pause();
        cluster.members[1].pause();
        paused = Date.now();
        await aborted(lock.signal, ttl + 1_000);
        abortedAt = Date.now();
      },
      { ttl },
    );

    await eventually(() => paused > 0, 5_000);
    const free = key('free');
    const start = performance.now();
    await expect(locks.tryAcquire(free)).rejects.toBeInstanceOf(LockUnavailableError);
    const failedIn = since(start);
    expect(failedIn).toBeLessThan(COMMAND_TIMEOUT * 2 + 200);

    await run.catch(() => undefined);
    // The lease (timed by etcd from after our request) outlives the deadline that aborted the signal.
    expect(abortedAt).toBeLessThanOrEqual(expiresAtPause + 100);
    expect(expiresAtPause - paused).toBeLessThanOrEqual(ttl);

    for (const m of cluster.members) m.resume();
    const resumed = performance.now();
    let lock: Lock | null = null;
    expect(
      await eventually(async () => {
        lock = await locks.tryAcquire(free).catch(() => null);
        return lock !== null;
      }, 10_000),
    ).toBe(true);
    const back = since(resumed);
    await (lock as Lock | null)?.release();
    console.log(
      `etcd: 2 of 3 paused: tryAcquire failed in ${Math.round(failedIn)} ms; signal aborted ` +
        `${abortedAt - paused} ms after the pause (expiresAt was ${expiresAtPause - paused} ms ahead); ` +
        `locking back ${Math.round(back)} ms after SIGCONT`,
    );
  });

  it('keeps tokens increasing across a restart of the whole cluster on its data', async () => {
    const { locks } = await boot();
    const k = key('restart');
    const before = await locks.acquire(k);
    await before.release();
    await cluster.restartAll();
    let after: Lock | null = null;
    expect(
      await eventually(async () => {
        after = await locks.tryAcquire(k).catch(() => null);
        return after !== null;
      }, 10_000),
    ).toBe(true);
    expect((after as Lock | null)!.fencingToken).toBeGreaterThan(before.fencingToken);
    await (after as Lock | null)!.release();
  });

  it('frees the lock of a killed holder process within its TTL, with a higher token next', async () => {
    const { locks } = await boot();
    const k = key('killed-holder');
    const ttl = 2_000;
    const holder = await startReplica('etcd-holder', {
      ETCD_HOSTS: cluster.hosts.join(','),
      LOCK_KEY: k,
      LOCK_TTL: String(ttl),
    });
    const kv = (await admin.kv.range({ key: Buffer.from(`lock:${k}`) })).kvs[0];
    const token = Number(kv.create_revision);
    await expect(locks.tryAcquire(k)).resolves.toBeNull();
    await stopReplica(holder, 'SIGKILL');
    const killed = performance.now();
    const next = await locks.acquire(k, { wait: 10_000 });
    const freedIn = since(killed);
    // The lease (2 s, renewed at the latest right before the kill) plus etcd's expiry check (~0.5 s).
    expect(freedIn).toBeLessThan(ttl + 1_500);
    expect(next.fencingToken).toBeGreaterThan(token);
    await next.release();
    console.log(
      `etcd: a SIGKILLed holder's lock (ttl ${ttl}) was taken ${Math.round(freedIn)} ms after the kill`,
    );
  });

  it('reports every member in health(), and the ones that answer', async () => {
    const replica = await boot();
    const backend = replica.app.get(LockManager, { strict: false }).backend;
    await expect(backend.health()).resolves.toEqual({ instances: 3, up: 3, quorum: 2 });
    await cluster.members[2].kill();
    await expect(backend.health()).resolves.toEqual({ instances: 3, up: 2, quorum: 2 });
  });

  it('reports busy, not unavailable, for a held key', async () => {
    const { locks } = await boot();
    const k = key('busy');
    const held = await locks.acquire(k);
    await expect(locks.acquire(k, { wait: 0 })).rejects.toBeInstanceOf(LockBusyError);
    await held.release();
  });
});

describe('etcd backend on a wiped cluster', () => {
  let single: EtcdCluster;
  beforeAll(async () => {
    single = await EtcdCluster.start(1);
  });
  afterAll(async () => {
    await single.stop();
  });

  it('fails closed with a clear error once revisions start over, instead of issuing lower tokens', async () => {
    const replica = await lockApp({
      backend: etcdBackend({ hosts: single.hosts, commandTimeout: COMMAND_TIMEOUT }),
    });
    try {
      const k = key('wipe');
      for (let i = 0; i < 5; i += 1) await replica.locks.runExclusive(k, () => undefined);
      await single.wipeAll();
      let error: unknown;
      expect(
        await eventually(async () => {
          error = await replica.locks.tryAcquire(k).then(
            (lock) => lock?.release().then(() => undefined),
            (e: unknown) => e,
          );
          return error instanceof LockUnavailableError && /went backwards/.test(String(error));
        }, 10_000),
      ).toBe(true);
      expect((error as Error).message).toMatch(/fails closed/);
      // It stays closed: no token from the new history is ever handed out.
      await expect(replica.locks.tryAcquire(key('other'))).rejects.toBeInstanceOf(
        LockUnavailableError,
      );
    } finally {
      await replica.close();
    }
  });
});
