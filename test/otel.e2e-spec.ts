/**
 * OpenTelemetry: with an SDK registered as the global providers (as a user's NodeSDK does), the module
 * records lock.acquire.duration, lock.held, lock.lost, lock.skipped and lock.acquire spans under the
 * scope nestjs-distributed-lock, against 3 real redis-server processes. Values are checked exactly
 * against the lock events of the same run.
 */
import { Injectable } from '@nestjs/common';
import { Cron, ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import { Test, type TestingModule } from '@nestjs/testing';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { DataPointType, type MetricData } from '@opentelemetry/sdk-metrics';
import {
  DistributedLockModule,
  Exclusive,
  LockBusyError,
  LockService,
  LockUnavailableError,
  type DistributedLockModuleOptions,
  type LockEvent,
} from '@app/distributed-lock';
import { LockEvents } from '@app/distributed-lock/events/lock-events';
import { LockManager } from '@app/distributed-lock/lock-manager';
import { ACQUIRE_DURATION_BUCKETS } from '@app/distributed-lock/otel/otel.listener';
import { delay, lockApp, type LockApp } from './support/lock-app';
import {
  durations,
  expectSpanTimes,
  histogramOf,
  hrMs,
  OtelTestSdk,
  pointsFor,
  record,
  sumOf,
  waitFor,
} from './support/otel-sdk';
import { RedisFleet } from './support/redis-fleet';

const DURATION = 'lock.acquire.duration';

@Injectable()
class CronJobs {
  runs = 0;
  @Cron('* * * * * *')
  @Exclusive()
  async tick() {
    this.runs += 1;
    await delay(20);
  }
}

@Injectable()
class Reports {
  @Exclusive({ key: (id: string) => `report:${id}` })
  build(id: string) {
    return id;
  }
}

async function nestApp(
  options: DistributedLockModuleOptions,
  providers: Array<typeof CronJobs | typeof Reports>,
  schedule = false,
): Promise<TestingModule> {
  const app = await Test.createTestingModule({
    imports: [
      ...(schedule ? [ScheduleModule.forRoot()] : []),
      DistributedLockModule.forRoot({ logger: false, ...options }),
    ],
    providers,
  }).compile();
  await app.init();
  return app;
}

describe('OpenTelemetry (global SDK, 3 Redis instances)', () => {
  let fleet: RedisFleet;
  let sdk: OtelTestSdk;
  let a: LockApp;
  let events: LockEvent[];

  beforeAll(async () => {
    sdk = new OtelTestSdk().install();
    fleet = await RedisFleet.start(3);
    a = await lockApp({ connections: fleet.urls });
    events = record(a.locks);
  });

  afterAll(async () => {
    await a?.close();
    await fleet?.stop();
    await sdk?.uninstall();
  });

  it('attaches a listener by default (events are built even with logging off), none with openTelemetry: false', async () => {
    expect(a.app.get(LockEvents, { strict: false }).observed).toBe(true);
    const quiet = await lockApp({ connections: fleet.urls, openTelemetry: false });
    try {
      expect(quiet.app.get(LockEvents, { strict: false }).observed).toBe(false);
      const lock = await quiet.locks.acquire('quiet:1');
      await lock.release();
      expect(pointsFor(await sdk.metrics(), 'quiet')).toEqual([]);
      expect(sdk.lockSpans('quiet')).toEqual([]);
    } finally {
      await quiet.close();
    }
  });

  it('acquired → released: duration (s), lock.held +1 then −1, one lock.acquire span; order:42 is "order"', async () => {
    const lock = await a.locks.acquire('order:42');
    const held = await sdk.metrics();
    expect(sumOf(held, 'lock.held', { 'lock.store': 'default', 'lock.name': 'order' })).toBe(1);
    const acquired = events.find((e) => e.type === 'acquired' && e.keys[0] === 'order:42')!;
    expect(acquired).toBeDefined();
    const h = histogramOf(held, DURATION, {
      'lock.store': 'default',
      'lock.name': 'order',
      'lock.outcome': 'acquired',
    })!;
    expect(h.count).toBe(1);
    expect(h.sum).toBeCloseTo((acquired as { durationMs: number }).durationMs / 1_000, 9);
    expect(h.sum).toBeLessThan(1); // seconds, not milliseconds
    expect(h.buckets.boundaries).toEqual(ACQUIRE_DURATION_BUCKETS);

    await lock.release();
    const after = await sdk.metrics();
    expect(sumOf(after, 'lock.held', { 'lock.store': 'default', 'lock.name': 'order' })).toBe(0);
    expect(pointsFor(after, 'order').sort()).toEqual([
      `${DURATION} {"lock.name":"order","lock.store":"default","lock.outcome":"acquired"}`,
      'lock.held {"lock.name":"order","lock.store":"default"}',
    ]);

    const spans = sdk.lockSpans('order');
    expect(spans).toHaveLength(1);
    const [span] = spans;
    expect(span.attributes).toEqual({
      'lock.store': 'default',
      'lock.name': 'order',
      'lock.outcome': 'acquired',
    });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.instrumentationScope.name).toBe('nestjs-distributed-lock');
    expect(span.parentSpanContext).toBeUndefined();
    expectSpanTimes(span, acquired as LockEvent & { durationMs: number });
  });

  it('busy (tryAcquire and acquire after waiting) is recorded with lock.outcome busy, not as an error', async () => {
    const holder = await a.locks.acquire('invoice:1');
    const other = await a.locks.tryAcquire('invoice:7'); // same name, another key: acquired
    expect(other).not.toBeNull();
    expect(await a.locks.tryAcquire('invoice:1')).toBeNull();
    await expect(a.locks.acquire('invoice:1', { wait: 150 })).rejects.toBeInstanceOf(LockBusyError);
    const mine = events.filter((e) => e.keys[0].startsWith('invoice:'));
    const busy = durations(mine, 'busy');
    expect(busy.count).toBe(2);

    const m = await sdk.metrics();
    const h = histogramOf(m, DURATION, {
      'lock.store': 'default',
      'lock.name': 'invoice',
      'lock.outcome': 'busy',
    })!;
    expect(h.count).toBe(2);
    expect(h.sum).toBeCloseTo(busy.sum, 9);
    expect(h.max).toBeGreaterThanOrEqual(0.15); // the waiting acquire: waiting included
    const granted = { 'lock.store': 'default', 'lock.name': 'invoice', 'lock.outcome': 'acquired' };
    expect(histogramOf(m, DURATION, granted)!.count).toBe(2);
    expect(sumOf(m, 'lock.held', { 'lock.store': 'default', 'lock.name': 'invoice' })).toBe(2);

    const spans = sdk.lockSpans('invoice');
    expect(spans.map((s) => s.attributes['lock.outcome']).sort()).toEqual([
      'acquired',
      'acquired',
      'busy',
      'busy',
    ]);
    expect(spans.every((s) => s.status.code === SpanStatusCode.UNSET)).toBe(true);
    const waited = mine.filter((e) => e.type === 'busy').at(-1) as LockEvent & {
      durationMs: number;
    };
    const waitedSpan = spans.find(
      (s) =>
        s.attributes['lock.outcome'] === 'busy' && Math.abs(hrMs(s.endTime) - waited.at) < 0.01,
    )!;
    expectSpanTimes(waitedSpan, waited);
    expect(hrMs(waitedSpan.endTime) - hrMs(waitedSpan.startTime)).toBeGreaterThanOrEqual(149);

    await holder.release();
    await other!.release();
    expect(
      sumOf(await sdk.metrics(), 'lock.held', { 'lock.store': 'default', 'lock.name': 'invoice' }),
    ).toBe(0);
  });

  it('a lost lock: lock.lost {name, reason} and lock.held back to 0, never decremented twice', async () => {
    const lock = await a.locks.acquire('session:9', { ttl: 200 });
    expect(lock.signal.aborted).toBe(false); // observed: the expiry timer runs
    expect(
      sumOf(await sdk.metrics(), 'lock.held', { 'lock.store': 'default', 'lock.name': 'session' }),
    ).toBe(1);
    await waitFor(events, (e) => e.type === 'lost' && e.keys[0] === 'session:9');
    await lock.release().catch(() => undefined); // the holder lets go afterwards: no second end
    await delay(50);

    const m = await sdk.metrics();
    expect(sumOf(m, 'lock.held', { 'lock.store': 'default', 'lock.name': 'session' })).toBe(0);
    expect(
      sumOf(m, 'lock.lost', {
        'lock.store': 'default',
        'lock.name': 'session',
        'lock.reason': 'expired',
      }),
    ).toBe(1);
    expect(pointsFor(m, 'session').sort()).toEqual([
      `${DURATION} {"lock.name":"session","lock.store":"default","lock.outcome":"acquired"}`,
      'lock.held {"lock.name":"session","lock.store":"default"}',
      'lock.lost {"lock.name":"session","lock.store":"default","lock.reason":"expired"}',
    ]);
    const ends = events.filter(
      (e) => e.keys[0] === 'session:9' && (e.type === 'lost' || e.type === 'released'),
    );
    expect(ends.map((e) => e.type)).toEqual(['lost']);
  });

  it('@Exclusive @Cron on 2 replicas: lock.skipped {handler, tick-claimed} equals the skipped runs', async () => {
    const replicas = [
      await nestApp({ connections: fleet.urls }, [CronJobs], true),
      await nestApp({ connections: fleet.urls }, [CronJobs], true),
    ];
    const all: LockEvent[] = [];
    for (const r of replicas) record(r.get(LockService), all);
    try {
      await waitFor(all, (e) => e.type === 'skipped' && e.reason === 'tick-claimed', 4_000);
      await waitFor(all, (e) => e.type === 'released' && e.handler === 'CronJobs.tick', 4_000);
    } finally {
      // Stop the schedules first and let a run in flight finish: no run is cut off by shutdown.
      for (const r of replicas) {
        for (const job of r.get(SchedulerRegistry).getCronJobs().values()) void job.stop();
      }
      await delay(300);
      for (const r of replicas) await r.close();
    }
    const handler = 'CronJobs.tick';
    const mine = all.filter((e) => e.handler === handler);
    const runs = replicas.reduce((n, r) => n + r.get(CronJobs).runs, 0);
    const acquired = durations(mine, 'acquired');
    expect(acquired.count).toBe(runs);
    const byReason = new Map<string, number>();
    for (const e of mine) {
      if (e.type === 'skipped') byReason.set(e.reason, (byReason.get(e.reason) ?? 0) + 1);
    }
    expect(byReason.get('tick-claimed')).toBeGreaterThanOrEqual(1);

    const m = await sdk.metrics();
    for (const [reason, n] of byReason) {
      expect(
        sumOf(m, 'lock.skipped', {
          'lock.store': 'default',
          'lock.name': handler,
          'lock.reason': reason,
        }),
      ).toBe(n);
    }
    const h = histogramOf(m, DURATION, {
      'lock.store': 'default',
      'lock.name': handler,
      'lock.outcome': 'acquired',
    })!;
    expect(h.count).toBe(runs);
    expect(h.sum).toBeCloseTo(acquired.sum, 9);
    expect(sumOf(m, 'lock.held', { 'lock.store': 'default', 'lock.name': handler })).toBe(0);
    // Named after the handler, never after its key cut at a colon.
    expect(pointsFor(m, 'CronJobs')).toEqual([]);
    expect(sdk.lockSpans(handler)).toHaveLength(runs + durations(mine, 'busy').count);
  });

  it('metricName renames LockService locks; @Exclusive locks keep the handler name', async () => {
    const app = await nestApp(
      { connections: fleet.urls, metricName: (key) => key.split(':').slice(0, 2).join(':') },
      [Reports],
    );
    try {
      const locks = app.get(LockService);
      const lock = await locks.acquire('tenant:acme:order:42');
      await lock.release();
      await expect(app.get(Reports).build('7')).resolves.toBe('7');
      const m = await sdk.metrics();
      expect(pointsFor(m, 'tenant:acme').sort()).toEqual([
        `${DURATION} {"lock.name":"tenant:acme","lock.store":"default","lock.outcome":"acquired"}`,
        'lock.held {"lock.name":"tenant:acme","lock.store":"default"}',
      ]);
      expect(pointsFor(m, 'tenant')).toEqual([]);
      const byHandler = {
        'lock.store': 'default',
        'lock.name': 'Reports.build',
        'lock.outcome': 'acquired',
      };
      expect(histogramOf(m, DURATION, byHandler)!.count).toBe(1);
      expect(pointsFor(m, 'report:7')).toEqual([]);
      expect(sdk.lockSpans('tenant:acme')).toHaveLength(1);
    } finally {
      await app.close();
    }
  });

  it('the lock.acquire span is a child of the caller’s active span', async () => {
    const tracer = trace.getTracer('test');
    const parentId = await tracer.startActiveSpan('checkout', async (parent) => {
      const lock = await a.locks.acquire('cart:3');
      await lock.release();
      parent.end();
      return parent.spanContext();
    });
    const [span] = sdk.lockSpans('cart');
    expect(span.parentSpanContext?.spanId).toBe(parentId.spanId);
    expect(span.spanContext().traceId).toBe(parentId.traceId);
  });

  it('unavailable (2 of 3 instances killed): lock.outcome unavailable and a span with status ERROR', async () => {
    await fleet.nodes[1].kill();
    await fleet.nodes[2].kill();
    try {
      await expect(a.locks.tryAcquire('payment:5')).rejects.toBeInstanceOf(LockUnavailableError);
    } finally {
      await fleet.heal();
    }
    // Let the module's clients reconnect before anything closes them.
    const backend = a.app.get(LockManager, { strict: false }).backend;
    for (let i = 0; (await backend.health()).up < 3; i += 1) {
      if (i > 200) throw new Error('the module did not reconnect to the restarted instances');
      await delay(25);
    }
    const e = events.find((x) => x.type === 'unavailable' && x.keys[0] === 'payment:5')!;
    expect(e).toBeDefined();
    const m = await sdk.metrics();
    const h = histogramOf(m, DURATION, {
      'lock.store': 'default',
      'lock.name': 'payment',
      'lock.outcome': 'unavailable',
    })!;
    expect(h.count).toBe(1);
    expect(h.sum).toBeCloseTo((e as { durationMs: number }).durationMs / 1_000, 9);
    expect(
      sumOf(m, 'lock.held', { 'lock.store': 'default', 'lock.name': 'payment' }),
    ).toBeUndefined();
    const [span] = sdk.lockSpans('payment');
    expect(span.attributes).toEqual({
      'lock.store': 'default',
      'lock.name': 'payment',
      'lock.outcome': 'unavailable',
    });
    expect(span.status).toEqual({
      code: SpanStatusCode.ERROR,
      message: (e as { error: string }).error,
    });
    expectSpanTimes(span, e as LockEvent & { durationMs: number });
  });

  it('exactly these four instruments, with their kinds (histogram, up-down counter = non-monotonic sum, counter = monotonic sum) and units, under scope nestjs-distributed-lock', async () => {
    const m: MetricData[] = await sdk.metrics();
    const shape = m
      .map((x) => ({
        name: x.descriptor.name,
        unit: x.descriptor.unit,
        points: x.dataPointType,
        monotonic: 'isMonotonic' in x ? x.isMonotonic : undefined,
      }))
      .sort((p, q) => p.name.localeCompare(q.name));
    expect(shape).toEqual([
      {
        name: DURATION,
        unit: 's',
        points: DataPointType.HISTOGRAM,
        monotonic: undefined,
      },
      {
        name: 'lock.held',
        unit: '{lock}',
        points: DataPointType.SUM,
        monotonic: false,
      },
      {
        name: 'lock.lost',
        unit: '{lock}',
        points: DataPointType.SUM,
        monotonic: true,
      },
      {
        name: 'lock.skipped',
        unit: '{run}',
        points: DataPointType.SUM,
        monotonic: true,
      },
    ]);
    // Every lock ended: nothing is counted as held any more.
    const held = m.find((x) => x.descriptor.name === 'lock.held')!;
    expect((held.dataPoints as Array<{ value: number }>).every((p) => p.value === 0)).toBe(true);
    // Attribute keys: only the documented ones.
    const keys = new Set(m.flatMap((x) => x.dataPoints.flatMap((p) => Object.keys(p.attributes))));
    expect([...keys].sort()).toEqual(['lock.name', 'lock.outcome', 'lock.reason', 'lock.store']);
  });
});
