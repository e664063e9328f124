import type { Redis } from 'ioredis';
import { Pool } from 'pg';
import { closeAll, delay, inspectors } from './support/lock-app';
import { PostgresServer } from './support/postgres-server';
import { freePort, RedisFleet } from './support/redis-fleet';
import { perTick, startReplica, stopReplica, type Replica } from './support/replicas';

/**
 * Replicas in child processes (test/support/cron-replica.ts with BACKEND=postgres) locking on one
 * throwaway PostgreSQL server; runs are recorded on a separate Redis, as in the Redis replica tests.
 */
describe('replicas on the PostgreSQL backend (child processes)', () => {
  let server: PostgresServer;
  let recordsFleet: RedisFleet;
  let records: Redis;
  let admin: Pool;
  let replicas: Replica[] = [];
  const env = (extra: Record<string, string>) => ({
    BACKEND: 'postgres',
    PG_URL: server.connectionString,
    RECORDS_URL: recordsFleet.urls[0],
    ...extra,
  });

  beforeAll(async () => {
    [server, recordsFleet] = await Promise.all([PostgresServer.start(), RedisFleet.start(1)]);
    [records] = inspectors(recordsFleet.urls);
    admin = new Pool({ connectionString: server.connectionString, max: 1 });
  });
  afterEach(async () => {
    await Promise.all(replicas.map((r) => stopReplica(r, 'SIGKILL')));
    replicas = [];
  });
  afterAll(async () => {
    await closeAll([records]);
    await admin.end();
    await recordsFleet.stop();
    await server.stop();
  });

  it('runs every @Cron tick exactly once on three replicas with skewed clocks (and twice without claims)', async () => {
    replicas = await Promise.all(
      [0, 150, 300].map((skew, i) =>
        startReplica(
          'cron-replica',
          env({ MODE: 'cron', SKEW_MS: String(skew), REPLICA: `r${i}` }),
        ),
      ),
    );
    const from = Math.ceil(Date.now() / 1000) + 1;
    await delay(11_000);
    const to = Math.floor(Date.now() / 1000) - 1;
    await Promise.all(replicas.map((r) => stopReplica(r)));
    expect(to - from).toBeGreaterThanOrEqual(8);

    const defaults = await perTick(records, 'defaults', from, to);
    const atLeast = await perTick(records, 'atLeast', from, to);
    const plain = await perTick(records, 'plain', from, to);
    expect(defaults).toEqual(defaults.map(() => 1));
    expect(atLeast).toEqual(atLeast.map(() => 1));
    // The checker can fail: without claims or lockAtLeastFor, the skewed replicas run ticks twice.
    expect(plain.filter((n) => n > 1).length).toBeGreaterThanOrEqual(Math.floor(plain.length / 2));
  });

  it('runs every tick of 20 jobs exactly once on three replicas firing at the same moment', async () => {
    replicas = await Promise.all(
      [0, 1, 2].map((i) => startReplica('cron-replica', env({ MODE: 'many', REPLICA: `n${i}` }))),
    );
    const from = Math.ceil(Date.now() / 1000) + 1;
    await delay(9_000);
    const to = Math.floor(Date.now() / 1000) - 1;
    await Promise.all(replicas.map((r) => stopReplica(r)));
    expect(to - from).toBeGreaterThanOrEqual(6);
    const wrong: string[] = [];
    for (let job = 0; job < 20; job += 1) {
      const runs = await perTick(records, `many${job}`, from, to);
      runs.forEach((n, k) => {
        if (n !== 1) wrong.push(`many${job} tick ${from + k}: ${n} runs`);
      });
    }
    expect(wrong).toEqual([]);
  });

  it('answers one 2xx and 409 for every concurrent duplicate of a route across three replicas', async () => {
    const ports = await Promise.all([0, 1, 2].map(() => freePort()));
    replicas = await Promise.all(
      ports.map((port, i) =>
        startReplica(
          'cron-replica',
          env({ MODE: 'http', HTTP_PORT: String(port), JOB_MS: '3000', REPLICA: `h${i}` }),
        ),
      ),
    );
    const pay = (i: number, order = '42') =>
      fetch(`http://127.0.0.1:${ports[i % 3]}/orders/${order}/pay`, { method: 'POST' }).then(
        async (r) => ({ status: r.status, body: (await r.json()) as Record<string, unknown> }),
      );
    // Each replica's pool opens its first connections on a payment of its own, so the burst below
    // measures contention, not connection set-up; the winner holds 3 s, longer than the burst takes.
    const warm = await Promise.all([0, 1, 2].map((i) => pay(i, `warm${i}`)));
    expect(warm.map((r) => r.status)).toEqual([201, 201, 201]);
    const results = await Promise.all(Array.from({ length: 21 }, (_, i) => pay(i)));
    const ok = results.filter((r) => r.status === 201);
    const conflicts = results.filter((r) => r.status === 409);
    expect(ok).toHaveLength(1);
    expect(conflicts).toHaveLength(20);
    expect(conflicts[0].body).toMatchObject({
      statusCode: 409,
      code: 'LOCK_BUSY',
      key: 'order:42',
    });
    expect(await records.lrange('pay:42', 0, -1)).toEqual([ok[0].body.by]);
    // Released after the run: the next payment goes through on any replica.
    expect((await pay(1)).status).toBe(201);
  });

  it('lets a running job finish on SIGTERM and leaves no lock behind', async () => {
    const replica = await startReplica(
      'cron-replica',
      env({ MODE: 'long', REPLICA: 'term', LONG_JOB_MS: '1500' }),
    );
    replicas = [replica];
    const deadline = Date.now() + 10_000;
    while ((await records.lrange('long-job', 0, -1)).length === 0 && Date.now() < deadline)
      await delay(20);
    const code = await stopReplica(replica, 'SIGTERM');
    expect(await records.lrange('long-job', 0, -1)).toEqual(['started:term', 'done:term']);
    expect({ code, signal: replica.child.signalCode }).toEqual({ code: null, signal: 'SIGTERM' });
    const { rows } = await admin.query<{ owner: string | null }>(
      "SELECT owner FROM distributed_locks WHERE key = 'long-job'",
    );
    expect(rows).toEqual([{ owner: null }]);
  });
});
