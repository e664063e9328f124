import type { Redis } from 'ioredis';
import { RedisFleet } from './support/redis-fleet';
import { closeAll, delay, inspectors } from './support/lock-app';
import { perTick, startReplica, stopReplica, type Replica } from './support/replicas';

describe('@Cron handlers on three replicas with skewed clocks (child processes)', () => {
  let fleet: RedisFleet;
  let recordsFleet: RedisFleet;
  let records: Redis;
  let replicas: Replica[] = [];

  beforeAll(async () => {
    [fleet, recordsFleet] = await Promise.all([RedisFleet.start(3), RedisFleet.start(1)]);
    [records] = inspectors(recordsFleet.urls);
  });
  afterEach(async () => {
    await Promise.all(replicas.map((r) => stopReplica(r, 'SIGKILL')));
    replicas = [];
  });
  afterAll(async () => {
    await closeAll([records]);
    await fleet.stop();
    await recordsFleet.stop();
  });

  it('runs every tick exactly once with per-tick claims or lockAtLeastFor, and twice without either', async () => {
    const skews = [0, 150, 300];
    replicas = await Promise.all(
      skews.map((skew, i) =>
        startReplica('cron-replica', {
          MODE: 'cron',
          REDIS_URLS: fleet.urls.join(','),
          RECORDS_URL: recordsFleet.urls[0],
          SKEW_MS: String(skew),
          REPLICA: `r${i}`,
        }),
      ),
    );
    const from = Math.ceil(Date.now() / 1000) + 1;
    await delay(12_000);
    const to = Math.floor(Date.now() / 1000) - 1;
    await Promise.all(replicas.map((r) => stopReplica(r)));
    expect(to - from).toBeGreaterThanOrEqual(9);

    const defaults = await perTick(records, 'defaults', from, to);
    const atLeast = await perTick(records, 'atLeast', from, to);
    const plain = await perTick(records, 'plain', from, to);
    // Sufficient: each mechanism alone runs every tick exactly once (none missed, none doubled).
    expect(defaults).toEqual(defaults.map(() => 1));
    expect(atLeast).toEqual(atLeast.map(() => 1));
    // Necessary: without them, the early replica's 10 ms run is over before the late ones fire.
    expect(plain.filter((n) => n > 1).length).toBeGreaterThanOrEqual(Math.floor(plain.length / 2));
    // The work really is spread over replicas (not one replica winning by luck of the clock).
    const who = new Set<string>();
    for (let t = from; t <= to; t += 1)
      for (const r of await records.lrange(`who:defaults:${t}`, 0, -1)) who.add(r);
    expect(who.size).toBeGreaterThanOrEqual(1);
  });

  it('runs every tick of 20 jobs exactly once on three replicas with no skew (simultaneous claims split votes)', async () => {
    replicas = await Promise.all(
      [0, 1, 2].map((i) =>
        startReplica('cron-replica', {
          MODE: 'many',
          REDIS_URLS: fleet.urls.join(','),
          RECORDS_URL: recordsFleet.urls[0],
          REPLICA: `n${i}`,
        }),
      ),
    );
    const from = Math.ceil(Date.now() / 1000) + 1;
    await delay(11_000);
    const to = Math.floor(Date.now() / 1000) - 1;
    await Promise.all(replicas.map((r) => stopReplica(r)));
    expect(to - from).toBeGreaterThanOrEqual(8);
    const wrong: string[] = [];
    for (let job = 0; job < 20; job += 1) {
      const runs = await perTick(records, `many${job}`, from, to);
      runs.forEach((n, k) => {
        if (n !== 1) wrong.push(`many${job} tick ${from + k}: ${n} runs`);
      });
    }
    expect(wrong).toEqual([]);
  });

  it('lets a running job finish on SIGTERM and leaves no lock behind', async () => {
    const replica = await startReplica('cron-replica', {
      MODE: 'long',
      REDIS_URLS: fleet.urls.join(','),
      RECORDS_URL: recordsFleet.urls[0],
      REPLICA: 'term',
      LONG_JOB_MS: '1500',
    });
    replicas = [replica];
    const deadline = Date.now() + 10_000;
    while ((await records.lrange('long-job', 0, -1)).length === 0 && Date.now() < deadline)
      await delay(20);
    expect(await records.lrange('long-job', 0, -1)).toEqual(['started:term']);
    const code = await stopReplica(replica, 'SIGTERM');
    expect(await records.lrange('long-job', 0, -1)).toEqual(['started:term', 'done:term']);
    // Nest's enableShutdownHooks re-raises the signal once app.close() has finished.
    expect({ code, signal: replica.child.signalCode }).toEqual({ code: null, signal: 'SIGTERM' });
    const admin = inspectors(fleet.urls);
    for (const c of admin) expect(await c.exists('lock:long-job')).toBe(0);
    await closeAll(admin);
  });
});
