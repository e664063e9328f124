import type { Redis } from 'ioredis';
import { EtcdCluster } from './support/etcd-cluster';
import { closeAll, delay, eventually, inspectors } from './support/lock-app';
import { PostgresServer } from './support/postgres-server';
import { RedisFleet } from './support/redis-fleet';
import { startReplica, stopReplica, type Replica } from './support/replicas';

/** One fenced record a leader wrote (test/support/leader-replica.ts). */
interface LeaderRecord {
  who: string;
  term: number;
  at: number;
}

/** A lock store for the replicas: the env they need. */
interface Store {
  env: Record<string, string>;
}

const TTL = 2_000;

/**
 * Leader election across child-process replicas (test/support/leader-replica.ts) on Redis (3
 * instances), PostgreSQL and etcd (3 members); the in-memory kit is single-process and runs the
 * contract only. Every write a leader makes goes through a fenced store on a separate records
 * Redis, so the checker sees what leaders actually did: one writer per term, terms increasing, no
 * two leaderships acting at once (by the writers' clocks on this one machine), and no stale leader
 * ever trying to write after its successor (the fence's `rejected` count). The leader is SIGTERMed
 * (a waiting replica must take over by the release announcement, far sooner than the TTL), SIGKILLed
 * (replaced within the TTL and one poll), and SIGSTOPped past its TTL then resumed (it must see its
 * leadership lost on resuming and write nothing).
 */
describe('leader election across child-process replicas', () => {
  let recordsFleet: RedisFleet;
  let records: Redis;
  let replicas: Replica[] = [];

  beforeAll(async () => {
    recordsFleet = await RedisFleet.start(1);
    [records] = inspectors(recordsFleet.urls);
  });
  afterEach(async () => {
    await Promise.all(replicas.map((r) => stopReplica(r, 'SIGKILL')));
    replicas = [];
  });
  afterAll(async () => {
    await closeAll([records]);
    await recordsFleet.stop();
  });

  async function recordsOf(name: string): Promise<LeaderRecord[]> {
    const raw = await records.lrange(`${name}:records`, 0, -1);
    return raw.map((r) => JSON.parse(r) as LeaderRecord);
  }

  /** The replica that wrote the latest record, and that record. */
  async function currentLeader(name: string, byId: Map<string, Replica>) {
    const list = await recordsOf(name);
    const last = list.at(-1)!;
    return { last, replica: byId.get(last.who)! };
  }

  /** Waits for a record of a term above `term`; returns it (the new leader's first write). */
  async function nextTerm(name: string, term: number, ms: number): Promise<LeaderRecord> {
    let found: LeaderRecord | undefined;
    const ok = await eventually(async () => {
      found = (await recordsOf(name)).find((r) => r.term > term);
      return found !== undefined;
    }, ms);
    if (!ok) throw new Error(`no leader with a term above ${term} within ${ms} ms`);
    return found!;
  }

  /**
   * The checker: one writer per term, terms strictly increasing from one leadership to the next in
   * the order the store accepted the writes, no overlap of leaderships by the writers' clocks, and
   * no rejected (stale) write but the one a frozen leader may have had on its way (`frozen`).
   * Returns the leaderships in order.
   */
  async function check(
    name: string,
    frozen: { who: string; term: number },
  ): Promise<Array<{ term: number; who: string }>> {
    const list = await recordsOf(name);
    const rejected = Number((await records.get(`${name}:rejected`)) ?? 0);
    const terms: Array<{ term: number; who: string; first: number; last: number }> = [];
    for (const r of list) {
      const current = terms.at(-1);
      if (current && current.term === r.term) {
        expect(r.who).toBe(current.who);
        current.last = r.at;
        continue;
      }
      if (current) expect(r.term).toBeGreaterThan(current.term);
      expect(terms.some((t) => t.term === r.term)).toBe(false);
      terms.push({ term: r.term, who: r.who, first: r.at, last: r.at });
    }
    for (let i = 1; i < terms.length; i += 1) {
      expect(terms[i].first).toBeGreaterThanOrEqual(terms[i - 1].last);
    }
    // A leader frozen (SIGSTOP) after it checked its signal and before its write left the process
    // sends that one write when it resumes, late: only the fence can stop it, and it does. Any other
    // rejected write is a leader that acted after it should have known it had lost.
    const rejectedRecords = (await records.lrange(`${name}:rejected-records`, 0, -1)).map(
      (r) => JSON.parse(r) as LeaderRecord,
    );
    expect(rejected).toBe(rejectedRecords.length);
    expect(rejectedRecords.length).toBeLessThanOrEqual(1);
    for (const r of rejectedRecords) expect(r).toMatchObject(frozen);
    return terms.map(({ term, who }) => ({ term, who }));
  }

  async function start(store: Store, name: string, ids: string[], extra = {}) {
    return Promise.all(
      ids.map((id) =>
        startReplica('leader-replica', {
          ...store.env,
          RECORDS_URL: recordsFleet.urls[0],
          NAME: name,
          TTL: String(TTL),
          REPLICA: id,
          ...extra,
        }),
      ),
    );
  }

  async function scenario(store: Store, name: string): Promise<void> {
    const byId = new Map<string, Replica>();
    const started = await start(store, name, ['r0', 'r1', 'r2']);
    started.forEach((r, i) => byId.set(`r${i}`, r));
    replicas.push(...started);
    expect(await eventually(async () => (await recordsOf(name)).length > 5, 20_000)).toBe(true);

    // SIGTERM: the leader's method sees 'shutdown', returns, the lease is released and announced.
    let { last, replica } = await currentLeader(name, byId);
    const termAt = Date.now();
    await stopReplica(replica, 'SIGTERM');
    let next = await nextTerm(name, last.term, TTL * 3);
    const afterTerm = next.at - termAt;
    expect(next.who).not.toBe(last.who);
    // Far below the TTL: woken by the release, not by the lease running out.
    expect(afterTerm).toBeLessThan(TTL / 2);

    // SIGKILL: nothing is released; the lease runs out, a waiter polling it takes over.
    ({ last, replica } = await currentLeader(name, byId));
    const killAt = Date.now();
    await stopReplica(replica, 'SIGKILL');
    next = await nextTerm(name, last.term, TTL * 4);
    const afterKill = next.at - killAt;
    expect(afterKill).toBeLessThanOrEqual(TTL + TTL / 5 + 1_000);
    const [r3] = await start(store, name, ['r3']);
    byId.set('r3', r3);
    replicas.push(r3);

    // SIGSTOP past the TTL: a rival leads; resumed, the old leader must see its leadership lost.
    ({ last, replica } = await currentLeader(name, byId));
    replica.child.kill('SIGSTOP');
    next = await nextTerm(name, last.term, TTL * 4);
    expect(next.who).not.toBe(last.who);
    await delay(300);
    replica.child.kill('SIGCONT');
    await delay(1_000);
    const stale = (await recordsOf(name)).filter(
      (r) => r.who === last.who && r.term === last.term && r.at > next.at,
    );
    expect(stale).toEqual([]);

    await Promise.all(replicas.map((r) => stopReplica(r, 'SIGTERM')));
    const leaderships = await check(name, { who: last.who, term: last.term });
    expect(leaderships.length).toBeGreaterThanOrEqual(4);
    console.log(
      `${name}: ${leaderships.length} leaderships, failover after SIGTERM ${afterTerm} ms, after SIGKILL ${afterKill} ms (TTL ${TTL})`,
    );
  }

  it('Redis (3 instances): one leader at a time through SIGTERM, SIGKILL and SIGSTOP of the leader', async () => {
    const fleet = await RedisFleet.start(3);
    try {
      await scenario(
        { env: { BACKEND: 'redis', REDIS_URLS: fleet.urls.join(',') } },
        'leader-redis',
      );
    } finally {
      await Promise.all(replicas.map((r) => stopReplica(r, 'SIGKILL')));
      await fleet.stop();
    }
  });

  it('PostgreSQL: one leader at a time through SIGTERM, SIGKILL and SIGSTOP of the leader', async () => {
    const server = await PostgresServer.start();
    try {
      await scenario(
        { env: { BACKEND: 'postgres', PG_URL: server.connectionString } },
        'leader-pg',
      );
    } finally {
      await Promise.all(replicas.map((r) => stopReplica(r, 'SIGKILL')));
      await server.stop();
    }
  });

  it('etcd (3 members): one leader at a time through SIGTERM, SIGKILL and SIGSTOP of the leader', async () => {
    const cluster = await EtcdCluster.start(3);
    try {
      await scenario(
        { env: { BACKEND: 'etcd', ETCD_HOSTS: cluster.hosts.join(',') } },
        'leader-etcd',
      );
    } finally {
      await Promise.all(replicas.map((r) => stopReplica(r, 'SIGKILL')));
      await cluster.stop();
    }
  });

  it('the checker catches a leader that ignores its signal (SIGSTOP past the TTL, resumed)', async () => {
    const fleet = await RedisFleet.start(3);
    const name = 'leader-broken';
    try {
      const store = { env: { BACKEND: 'redis', REDIS_URLS: fleet.urls.join(',') } };
      const started = await start(store, name, ['b0', 'b1'], { IGNORE_SIGNAL: '1' });
      replicas.push(...started);
      const byId = new Map([
        ['b0', started[0]],
        ['b1', started[1]],
      ]);
      expect(await eventually(async () => (await recordsOf(name)).length > 5, 20_000)).toBe(true);
      const { last, replica } = await currentLeader(name, byId);
      replica.child.kill('SIGSTOP');
      await nextTerm(name, last.term, TTL * 4);
      replica.child.kill('SIGCONT');
      await delay(500);
      // The resumed leader went on writing with its old term: the fence rejected every write.
      const rejected = Number((await records.get(`${name}:rejected`)) ?? 0);
      expect(rejected).toBeGreaterThan(1);
    } finally {
      await Promise.all(replicas.map((r) => stopReplica(r, 'SIGKILL')));
      await fleet.stop();
    }
  });
});
