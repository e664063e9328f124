import { Injectable, type OnModuleInit } from '@nestjs/common';
import { ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import { Test, type TestingModule } from '@nestjs/testing';
import type { Redis } from 'ioredis';
import {
  DistributedLockConfigError,
  DistributedLockModule,
  ExclusiveScheduler,
  InvalidLockArgumentError,
  LockService,
  type LockEvent,
} from '@app/distributed-lock';
import { CapturingLogger, closeAll, delay, eventually, inspectors } from './support/lock-app';
import { RedisFleet } from './support/redis-fleet';
import { perTick, startReplica, stopReplica, type Replica } from './support/replicas';

/**
 * `ExclusiveScheduler`: jobs added at runtime behave as `@Exclusive()` on `@Cron` / `@Interval` /
 * `@Timeout`, on real redis-server processes: registered in SchedulerRegistry, skipped when busy,
 * per-tick claims, events named after the job, errors contained, deletion stops them, shutdown
 * waits for a running job; and across three replica processes a runtime cron job runs every tick
 * exactly once.
 */
describe('ExclusiveScheduler', () => {
  let fleet: RedisFleet;
  let recordsFleet: RedisFleet;
  let records: Redis;
  const apps: TestingModule[] = [];
  let replicas: Replica[] = [];

  beforeAll(async () => {
    [fleet, recordsFleet] = await Promise.all([RedisFleet.start(3), RedisFleet.start(1)]);
    [records] = inspectors(recordsFleet.urls);
  });
  afterEach(async () => {
    for (const app of apps.splice(0).reverse()) await app.close();
    await Promise.all(replicas.map((r) => stopReplica(r, 'SIGKILL')));
    replicas = [];
  });
  afterAll(async () => {
    await closeAll([records]);
    await fleet.stop();
    await recordsFleet.stop();
  });

  /** One replica in this process; `providers` may add jobs from onModuleInit. */
  async function replica(
    providers: Array<new (...a: never[]) => unknown> = [],
    logger?: CapturingLogger,
  ) {
    const app = await Test.createTestingModule({
      imports: [
        ScheduleModule.forRoot(),
        DistributedLockModule.forRoot({
          connections: fleet.urls,
          commandTimeout: 250,
          ttl: 2_000,
          logger: logger ?? false,
        }),
      ],
      providers,
    }).compile();
    const events: LockEvent[] = [];
    app.get(LockService).events.subscribe((e) => events.push(e));
    await app.init();
    apps.push(app);
    return {
      app,
      events,
      jobs: app.get(ExclusiveScheduler),
      registry: app.get(SchedulerRegistry),
      locks: app.get(LockService),
    };
  }

  it('adds an interval job from onModuleInit: runs under the job name, skips while busy, stops when deleted', async () => {
    let runs = 0;
    @Injectable()
    class Jobs implements OnModuleInit {
      constructor(private readonly jobs: ExclusiveScheduler) {}
      onModuleInit() {
        this.jobs.addInterval('tenant-7:sync', 100, () => {
          runs += 1;
        });
      }
    }
    const { events, registry } = await replica([Jobs]);
    const other = await replica();
    expect(registry.doesExist('interval', 'tenant-7:sync')).toBe(true);
    expect(await eventually(() => runs >= 2, 3_000)).toBe(true);
    const acquired = events.find((e) => e.type === 'acquired');
    expect(acquired).toMatchObject({ keys: ['tenant-7:sync'], handler: 'tenant-7:sync' });

    const held = await other.locks.acquire('tenant-7:sync', { ttl: 10_000 });
    await delay(150);
    const during = runs;
    expect(
      await eventually(
        () =>
          events.some(
            (e) => e.type === 'skipped' && e.reason === 'busy' && e.handler === 'tenant-7:sync',
          ),
        2_000,
      ),
    ).toBe(true);
    await delay(300);
    expect(runs).toBe(during);
    await held.release();
    expect(await eventually(() => runs > during, 2_000)).toBe(true);

    registry.deleteInterval('tenant-7:sync');
    await delay(150);
    const stopped = runs;
    await delay(400);
    expect(runs).toBe(stopped);
  });

  it('claims each cron tick by its slot: two replicas, every tick runs once, the other skips it as tick-claimed', async () => {
    const a = await replica();
    const b = await replica();
    const ran: number[] = [];
    const job = () => {
      ran.push(Math.floor((Date.now() + 100) / 1000));
    };
    a.jobs.addCronJob('every-second', '* * * * * *', job, { timeZone: 'Asia/Kolkata' });
    b.jobs.addCronJob('every-second', '* * * * * *', job, { timeZone: 'Asia/Kolkata' });
    await delay(3_600);
    a.registry.deleteCronJob('every-second');
    b.registry.deleteCronJob('every-second');
    await delay(300);
    expect(ran.length).toBeGreaterThanOrEqual(3);
    expect(new Set(ran).size).toBe(ran.length);
    const claimed = [...a.events, ...b.events].filter(
      (e) => e.type === 'skipped' && e.reason === 'tick-claimed',
    );
    expect(claimed.length).toBeGreaterThanOrEqual(2);
    for (const e of claimed) {
      expect(e).toMatchObject({ handler: 'every-second', keys: ['every-second'] });
      expect((e as { tick: number }).tick % 1_000).toBe(0);
    }
  });

  it('contains and logs an error thrown by a job, which keeps firing', async () => {
    const logger = new CapturingLogger();
    const { jobs } = await replica([], logger);
    let calls = 0;
    jobs.addInterval('flaky', 80, () => {
      calls += 1;
      throw new Error('kaput');
    });
    expect(await eventually(() => calls >= 3, 3_000)).toBe(true);
    expect(
      logger.at('error').filter((m) => m.includes('job flaky failed: kaput')).length,
    ).toBeGreaterThanOrEqual(2);
  });

  it('runs a timeout job once and lets it finish on shutdown before the lock is released', async () => {
    const { app, jobs, events } = await replica();
    let done = false;
    let started = false;
    jobs.addTimeout('one-shot', 20, async () => {
      started = true;
      await delay(600);
      done = true;
    });
    expect(await eventually(() => started, 2_000)).toBe(true);
    apps.splice(apps.indexOf(app), 1);
    await app.close();
    expect(done).toBe(true);
    expect(events.filter((e) => e.type === 'released' && e.handler === 'one-shot')).toHaveLength(1);
    const [inspect] = inspectors([fleet.urls[0]]);
    expect(await inspect.exists('lock:one-shot')).toBe(0);
    await closeAll([inspect]);
  });

  it('rejects bad input with a typed error naming the argument, registering nothing', async () => {
    const { jobs, registry } = await replica();
    const noop = () => undefined;
    jobs.addInterval('taken', 1_000, noop);
    const cases: Array<[() => void, string]> = [
      [() => jobs.addCronJob('c1', 'every tuesday', noop), 'cronTime'],
      [() => jobs.addCronJob('c2', '* * * * * *', 'run' as unknown as () => void), 'handler'],
      [
        () => jobs.addCronJob('c3', '* * * * * *', noop, { timeZone: 'Mars/Olympus' }),
        'options.timeZone',
      ],
      [() => jobs.addCronJob('', '* * * * * *', noop), 'name'],
      [() => jobs.addInterval('taken', 1_000, noop), 'name'],
      [() => jobs.addInterval('i1', 0, noop), 'ms'],
      [() => jobs.addInterval('i2', 1.5, noop), 'ms'],
      [() => jobs.addTimeout('t1', -5, noop), 'ms'],
      [() => jobs.addInterval('i3', 1_000, noop, { ttl: -1 }), 'options.ttl'],
      [() => jobs.addInterval('i4', 1_000, noop, { onBusy: 'later' as 'skip' }), 'options.onBusy'],
      [() => jobs.addInterval('i5', 1_000, noop, { store: 'nowhere' }), 'options.store'],
    ];
    for (const [call, field] of cases) {
      let error: unknown;
      try {
        call();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidLockArgumentError);
      expect(error).toMatchObject({ field });
    }
    expect(registry.getCronJobs().size).toBe(0);
    expect(registry.getIntervals()).toEqual(['taken']);
    expect(registry.getTimeouts()).toEqual([]);
  });

  it('says what is missing when ScheduleModule is not imported', async () => {
    const app = await Test.createTestingModule({
      imports: [DistributedLockModule.forRoot({ connections: fleet.urls, logger: false })],
    }).compile();
    await app.init();
    apps.push(app);
    expect(() => app.get(ExclusiveScheduler).addInterval('x', 100, () => undefined)).toThrow(
      DistributedLockConfigError,
    );
  });

  it('runs every tick of a cron job added at runtime exactly once across three replica processes with skewed clocks', async () => {
    const skews = [0, 150, 300];
    replicas = await Promise.all(
      skews.map((skew, i) =>
        startReplica('cron-replica', {
          MODE: 'dynamic',
          REDIS_URLS: fleet.urls.join(','),
          RECORDS_URL: recordsFleet.urls[0],
          SKEW_MS: String(skew),
          REPLICA: `d${i}`,
        }),
      ),
    );
    const from = Math.ceil(Date.now() / 1000) + 1;
    await delay(10_000);
    const to = Math.floor(Date.now() / 1000) - 1;
    await Promise.all(replicas.map((r) => stopReplica(r)));
    expect(to - from).toBeGreaterThanOrEqual(7);
    const runs = await perTick(records, 'dynamic', from, to);
    expect(runs).toEqual(runs.map(() => 1));
    // Necessary: the same job without the scheduler's lock runs ticks more than once.
    const unlocked = await perTick(records, 'dynamic-unlocked', from, to);
    expect(unlocked.filter((n) => n > 1).length).toBeGreaterThanOrEqual(
      Math.floor(unlocked.length / 2),
    );
  });
});
