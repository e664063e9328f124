import { Etcd3 } from 'etcd3';
import { performance } from 'node:perf_hooks';
import {
  LockLostError,
  LockUnavailableError,
  type Lock,
  type LockEvent,
} from '@app/distributed-lock';
import { etcdBackend } from '@app/distributed-lock/etcd';
import { EtcdCluster, type EtcdMember } from './support/etcd-cluster';
import { EtcdLink } from './support/etcd-link';
import { aborted, delay, eventually, lockApp, since, type LockApp } from './support/lock-app';

/**
 * The etcd backend under the faults of issue 16 that test/etcd.e2e-spec.ts does not cover, on a
 * 3-member cluster the harness starts: a member catching up after a pause (extensions keep working,
 * never from its stale state, never failing closed), an extension to a new TTL whose reply was lost
 * (the keys stay with the live holder), a holder partitioned from the cluster (its signal aborts
 * before etcd deletes its key), an event loop blocked past the deadline, a retried transaction whose
 * first reply was lost, and shutdown with a waiter. Links between one client and a member are
 * test/support/etcd-link.ts proxies; the members keep talking to each other directly.
 */
const COMMAND_TIMEOUT = 500;
let cluster: EtcdCluster;
let admin: Etcd3;
const apps: LockApp[] = [];
const links: EtcdLink[] = [];
let seq = 0;
const key = (what: string) => `etcd-faults:${(seq += 1)}:${what}`;

async function boot(hosts: string[]): Promise<LockApp> {
  const replica = await lockApp({
    backend: etcdBackend({ hosts, commandTimeout: COMMAND_TIMEOUT }),
  });
  apps.push(replica);
  return replica;
}

async function link(member: EtcdMember): Promise<EtcdLink> {
  const started = await EtcdLink.start(member.clientPort);
  links.push(started);
  return started;
}

/** A follower now (the members asked themselves). */
async function follower(): Promise<EtcdMember> {
  const leader = await cluster.leader();
  return cluster.members.find((m) => m !== leader)!;
}

/**
 * `n` writes of 1 KiB through a client of the members other than `skip` (a client that may pick a
 * paused member would wait on it), 50 at a time; then deletes the keys `remove`.
 */
async function writeMany(skip: EtcdMember, n: number, remove: string[] = []): Promise<void> {
  const writer = new Etcd3({
    hosts: cluster.members.filter((m) => m !== skip).map((m) => m.url),
  });
  try {
    const value = 'x'.repeat(1024);
    for (let i = 0; i < n; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, (_, j) =>
          writer.put(`etcd-faults:filler:${i + j}`).value(value),
        ),
      );
    }
    for (const k of remove) await writer.delete().key(k);
  } finally {
    writer.close();
  }
}

/** Blocks this process's event loop for `ms` (as a long GC pause or a CPU-bound job would). */
function blockEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** What a call ended as: ok, lost, failed closed, or another unavailability. */
async function outcomeOf(call: Promise<void>): Promise<string> {
  try {
    await call;
    return 'ok';
  } catch (error) {
    if (error instanceof LockLostError) return 'lost';
    if (error instanceof LockUnavailableError) {
      return /fails closed/.test(error.message) ? 'closed' : 'unavailable';
    }
    throw error;
  }
}

beforeAll(async () => {
  cluster = await EtcdCluster.start(3);
  admin = new Etcd3({ hosts: cluster.hosts });
});
afterEach(async () => {
  for (const l of links) l.heal();
  for (const app of apps.splice(0)) await app.close();
  for (const l of links.splice(0)) await l.stop();
  await cluster.heal();
});
afterAll(async () => {
  admin.close();
  await cluster.stop();
});

describe('etcd backend: a member catching up after a pause', () => {
  it('keeps extending while the member catches up under writes, and never fails closed', async () => {
    const { locks } = await boot(cluster.hosts);
    const lagging = await follower();
    const writer = new Etcd3({
      hosts: cluster.members.filter((m) => m !== lagging).map((m) => m.url),
    });
    // Long enough that no slow step of the set-up (2,000 writes on a busy machine) outlives it.
    const lock = await locks.acquire(key('catch-up'), { ttl: 30_000 });
    lagging.pause();
    await writeMany(lagging, 2_000);
    // The holder sees the latest revision (the paused member is skipped once a call to it timed out).
    for (let i = 0, ok = 0; i < 10 && ok < 3; i += 1) {
      if ((await outcomeOf(lock.extend())) === 'ok') ok += 1;
    }
    // Other clients keep writing meanwhile, as on a busy cluster: the resumed member catches up, and
    // then trails the leader by the writes it has not applied yet.
    let writing = true;
    let writes = 0;
    const busy = (async () => {
      while (writing) {
        await writer.put(`etcd-faults:busy:${writes % 100}`).value('x');
        writes += 1;
      }
    })();
    lagging.resume();
    const counts: Record<string, number> = { ok: 0, lost: 0, closed: 0, unavailable: 0 };
    const start = performance.now();
    try {
      while (since(start) < 3_000) {
        counts[await outcomeOf(lock.extend())] += 1;
        await new Promise((r) => setImmediate(r)); // a call failing at once must not starve I/O
      }
    } finally {
      writing = false;
      await busy.finally(() => writer.close());
    }
    const after = await locks.tryAcquire(key('after-catch-up')).then(
      async (l) => (await l?.release(), 'acquired'),
      (e: Error) => e.message,
    );
    console.log(
      `etcd: a paused member catching up after 2,000 writes: ${JSON.stringify(counts)} extends in 3 s ` +
        `(${writes} writes by others meanwhile), then a new acquisition: ${after}`,
    );
    expect(counts.closed).toBe(0);
    expect(counts.lost).toBe(0);
    expect(counts.ok).toBeGreaterThan(counts.unavailable);
    expect(after).toBe('acquired');
  });

  it('never extends a lock whose key was deleted, from the stale state of a member catching up', async () => {
    const outcomes: string[] = [];
    for (let run = 0; run < 3; run += 1) {
      const began = performance.now();
      const lagging = await follower();
      // This holder's client talks to the lagging member only.
      const holder = await boot([lagging.url]);
      const k = key('stale');
      const lock = await holder.locks.acquire(k, { ttl: 5_000 });
      lagging.pause();
      await writeMany(lagging, 2_000, [`lock:${k}`]);
      lagging.resume();
      let outcome = await outcomeOf(lock.extend());
      // A read that waited too long for the member to catch up may time out: ask again.
      for (let i = 0; i < 5 && outcome === 'unavailable'; i += 1) {
        outcome = await outcomeOf(lock.extend());
      }
      outcomes.push(outcome);
      apps.splice(apps.indexOf(holder), 1);
      await holder.close();
      await cluster.healthy();
      console.log(`etcd: stale-state run ${run}: ${outcome} after ${Math.round(since(began))} ms`);
    }
    console.log(
      `etcd: extend after the key was deleted behind a lagging member: ${outcomes.join(', ')}`,
    );
    expect(outcomes).toEqual(['lost', 'lost', 'lost']);
  });
});

describe('etcd backend: an extension to a new TTL whose reply was lost', () => {
  it('keeps the keys for the live holder: no rival takes the lock before its deadline', async () => {
    const to = await link(cluster.members[0]);
    const holder = await boot([to.url]);
    const rival = await boot(cluster.hosts);
    const runs = 10;
    let takeovers = 0;
    let released = 0;
    let applied = 0;
    const takenWithLeft: number[] = [];
    for (let run = 0; run < runs; run += 1) {
      const k = key('move');
      const lock = await holder.locks.acquire(k, { ttl: 2_000 });
      const first = (await admin.kv.range({ key: Buffer.from(`lock:${k}`) })).kvs[0].lease;
      // The move transaction (it carries the key; the lease grant before it does not) is applied,
      // and its answer held past the call's deadline.
      to.delayRepliesAfter(`lock:${k}`, COMMAND_TIMEOUT + 700);
      await expect(lock.extend(3_000)).rejects.toBeInstanceOf(LockUnavailableError);
      const kv = (await admin.kv.range({ key: Buffer.from(`lock:${k}`) })).kvs[0];
      if (kv && kv.lease !== first) applied += 1;
      let left = lock.expiresAt - Date.now();
      // Up to 300 ms before the holder's deadline; then it releases while its keys are surely there.
      while (left > 300) {
        const taken = await rival.locks.tryAcquire(k).catch(() => null);
        if (taken) {
          takeovers += 1;
          takenWithLeft.push(left);
          await taken.release();
          break;
        }
        await delay(50);
        left = lock.expiresAt - Date.now();
      }
      // Whichever lease holds the keys now, the holder's release finds them.
      if ((await outcomeOf(lock.release())) === 'ok') released += 1;
      await delay(800); // the held replies drain before the next run
    }
    console.log(
      `etcd: lost move reply: ${takeovers} of ${runs} taken by a rival within the holder's validity ` +
        `(${takenWithLeft.map((l) => `${l} ms left`).join(', ')}); the move was applied ${applied} ` +
        `times; ${released} released by the holder`,
    );
    expect(to.fired).toBe(runs);
    expect(takeovers).toBe(0);
    expect(released).toBe(runs);
  });

  it('ends the lock at once when a lost move was to a shorter lease than the holder counts on', async () => {
    const to = await link(cluster.members[0]);
    const holder = await boot([to.url]);
    const rival = await boot(cluster.hosts);
    const k = key('move-shorter');
    const lock = await holder.locks.acquire(k, { ttl: 5_000 });
    const signal = lock.signal;
    to.delayRepliesAfter(`lock:${k}`, COMMAND_TIMEOUT + 300);
    const outcome = await outcomeOf(lock.extend(1_000));
    // If the move was applied the keys end with the 1 s lease, long before the holder's 5 s deadline.
    let takenWhileHeld: number | undefined;
    const taken = await eventually(async () => {
      const next = await rival.locks.tryAcquire(k).catch(() => null);
      if (!next) return false;
      if (!signal.aborted) takenWhileHeld = lock.expiresAt - Date.now();
      await next.release();
      return true;
    }, 8_000);
    console.log(
      `etcd: lost move to a shorter TTL: extend ${outcome}, signal aborted ${signal.aborted}; ` +
        `a rival took it ${takenWhileHeld === undefined ? 'after the abort' : `with ${takenWhileHeld} ms of the holder's validity left`}`,
    );
    expect(taken).toBe(true);
    expect(outcome).toBe('lost');
    expect(takenWhileHeld).toBeUndefined();
  });

  it('extends again after the lost reply, onto either lease, and then revokes the leases it left', async () => {
    const to = await link(cluster.members[0]);
    const holder = await boot([to.url]);
    const k = key('move-again');
    const leaseNow = async () =>
      (await admin.kv.range({ key: Buffer.from(`lock:${k}`) })).kvs[0]?.lease;
    const lock = await holder.locks.acquire(k, { ttl: 4_000 });
    const first = await leaseNow();
    to.delayRepliesAfter(`lock:${k}`, COMMAND_TIMEOUT + 300);
    await expect(lock.extend(6_000)).rejects.toBeInstanceOf(LockUnavailableError);
    const pending = await leaseNow();
    expect(pending).not.toBe(first); // applied: the keys are under the new lease
    await delay(400); // the held replies drain
    await lock.extend(6_000);
    const last = await leaseNow();
    expect([first, pending]).not.toContain(last);
    const gone = async (id: string) =>
      Number((await admin.leaseClient.leaseTimeToLive({ ID: id })).TTL) < 0;
    expect(await eventually(async () => (await gone(first)) && (await gone(pending)), 2_000)).toBe(
      true,
    );
    await lock.release();
    expect(await admin.get(`lock:${k}`).exists()).toBe(false);
  });
});

describe('etcd backend: holder-side faults', () => {
  it("aborts a partitioned holder's signal before etcd deletes its key by lease expiry", async () => {
    const to = await link(cluster.members[0]);
    const holder = await boot([to.url]);
    const k = key('partition');
    const ttl = 2_000;
    let deletedAt = 0;
    const watcher = await admin.watch().key(`lock:${k}`).create();
    watcher.on('delete', () => {
      deletedAt ||= Date.now();
    });
    let partitionedAt = 0;
    let abortedAt = 0;
    try {
      await holder.locks
        .runExclusive(
          k,
          async (lock) => {
            await delay(500);
            to.partition();
            partitionedAt = Date.now();
            await aborted(lock.signal, ttl + 1_000);
            abortedAt = Date.now();
          },
          { ttl },
        )
        .catch(() => undefined);
      expect(await eventually(() => deletedAt > 0, ttl + 3_000)).toBe(true);
    } finally {
      await watcher.cancel();
    }
    console.log(
      `etcd: holder partitioned (ttl ${ttl}): signal aborted ${abortedAt - partitionedAt} ms, ` +
        `key deleted by lease expiry ${deletedAt - partitionedAt} ms after the partition`,
    );
    expect(abortedAt).toBeGreaterThan(0);
    expect(abortedAt).toBeLessThan(deletedAt);
  });

  it('with the event loop blocked past the deadline: the signal is aborted and no extension succeeds late', async () => {
    const { locks } = await boot(cluster.hosts);
    const rival = await boot(cluster.hosts);
    const k = key('blocked');
    const ttl = 2_000;
    let unblocked = false;
    let lateExtensions = 0;
    const sub = locks.events.subscribe((e: LockEvent) => {
      if (e.type === 'extended' && unblocked) lateExtensions += 1;
    });
    let abortedAfter: boolean | undefined;
    let inFlight: string | undefined;
    let after: string | undefined;
    try {
      await locks
        .runExclusive(
          k,
          async (lock: Lock) => {
            await delay(300);
            // An extension asked for just before the block: its answer is read after it.
            const late = lock.extend();
            blockEventLoop(ttl + 500);
            unblocked = true;
            abortedAfter = lock.signal.aborted;
            inFlight = await outcomeOf(late);
            after = await outcomeOf(lock.extend());
            await delay(500); // any auto-extension that was due has come back
          },
          { ttl },
        )
        .catch(() => undefined);
    } finally {
      sub.unsubscribe();
    }
    const freed = performance.now();
    const next = await rival.locks.acquire(k, { wait: ttl + 2_000 });
    console.log(
      `etcd: event loop blocked ${ttl + 500} ms (ttl ${ttl}): in-flight extension ${inFlight}, ` +
        `next extension ${after}, ${lateExtensions} late extensions; a rival had it ` +
        `${Math.round(since(freed))} ms after the work ended`,
    );
    await next.release();
    expect(abortedAfter).toBe(true);
    // Its answer was read after the deadline (or its timer fired first): lost or unavailable, never ok.
    expect(inFlight).not.toBe('ok');
    expect(after).toBe('lost');
    expect(lateExtensions).toBe(0);
  });

  it('treats its own write, found by a retry of a transaction whose reply was lost, as won', async () => {
    const [a, b] = [await link(cluster.members[0]), await link(cluster.members[1])];
    const { locks } = await boot([a.url, b.url]);
    const k = key('retried');
    for (const l of [a, b]) l.countPattern = `lock:${k}`;
    // The first put-if-absent transaction (on whichever member it goes to) is applied, then its
    // connection is cut before the answer: the client moves to the other member and asks again.
    a.resetAfter(`lock:${k}`, 150, () => b.disarm());
    b.resetAfter(`lock:${k}`, 150, () => a.disarm());
    const lock = await locks.acquire(k, { ttl: 5_000 });
    const kv = (await admin.kv.range({ key: Buffer.from(`lock:${k}`) })).kvs[0];
    console.log(
      `etcd: put-if-absent reply lost (${a.fired + b.fired} cut), ${a.counted + b.counted} ` +
        `transactions sent; granted with token ${lock.fencingToken} = create revision ${kv.create_revision}`,
    );
    expect(a.fired + b.fired).toBe(1);
    expect(a.counted + b.counted).toBe(2);
    expect(lock.fencingToken).toBe(Number(kv.create_revision));
    await lock.release();
    expect(await admin.get(`lock:${k}`).exists()).toBe(false);
  });

  it('shuts down quickly with a waiter waiting on a held lock', async () => {
    const owner = await boot(cluster.hosts);
    const waiting = await boot(cluster.hosts);
    const k = key('shutdown-waiter');
    const held = await owner.locks.acquire(k, { ttl: 10_000 });
    const waiter = waiting.locks.acquire(k, { wait: 20_000 }).then(
      (l) => `acquired ${l.fencingToken}`,
      (e: Error) => e.constructor.name,
    );
    await delay(300); // it found the key held and watches its delete
    const start = performance.now();
    apps.splice(apps.indexOf(waiting), 1);
    await waiting.close();
    const closedIn = since(start);
    const outcome = await waiter;
    console.log(`etcd: shutdown with a waiter took ${Math.round(closedIn)} ms; waiter: ${outcome}`);
    expect(outcome).toBe('LockUnavailableError');
    // Far below the waiter's 20 s and the lock's 10 s: it did not sit out either.
    expect(closedIn).toBeLessThan(5_000);
    await held.release();
  });
});
