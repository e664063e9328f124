import type { LoggerService } from '@nestjs/common';
import { context, metrics, trace, type Meter, type MeterProvider } from '@opentelemetry/api';
import {
  AggregationTemporality,
  MeterProvider as SdkMeterProvider,
  MetricReader,
  type DataPoint,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import type { LockEvent } from '../events/lock-event.interface';
import { LockEvents } from '../events/lock-events';
import { validateModuleOptions } from '../options/validate-options';
import { defaultMetricName } from './lock-metric-name';
import { attachOpenTelemetry } from './otel.listener';

class PullReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected onForceFlush = () => Promise.resolve();
  protected onShutdown = () => Promise.resolve();
}

const warnings: string[] = [];
const logger: LoggerService = {
  log: () => undefined,
  error: () => undefined,
  warn: (m: string) => warnings.push(m),
};

function hub(metricName?: (key: string) => string): LockEvents {
  const events = new LockEvents();
  events.attachLogger(logger);
  expect(attachOpenTelemetry(events, metricName)).toBe(true);
  return events;
}

const acquired = (key: string, handler?: string): LockEvent => ({
  type: 'acquired',
  keys: [key],
  at: Date.now(),
  handler,
  store: 'default',
  durationMs: 2,
  fencingToken: 1,
});

let reader: PullReader;
let provider: SdkMeterProvider;
let spans: InMemorySpanExporter;

async function points(metric: string): Promise<Array<[string, unknown]>> {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics
    .filter((s) => s.scope.name === 'nestjs-distributed-lock')
    .flatMap((s) => s.metrics)
    .filter((m) => m.descriptor.name === metric)
    .flatMap((m) => (m.dataPoints as DataPoint<unknown>[]).map((p) => p))
    .map((p) => [JSON.stringify(p.attributes), p.value] as [string, unknown]);
}

beforeEach(() => {
  warnings.length = 0;
  reader = new PullReader();
  provider = new SdkMeterProvider({ readers: [reader] });
  spans = new InMemorySpanExporter();
});

afterEach(async () => {
  metrics.disable();
  trace.disable();
  await provider.shutdown();
});

function install(): void {
  metrics.setGlobalMeterProvider(provider);
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }),
  );
}

describe('defaultMetricName', () => {
  it.each([
    ['order:42', 'order'],
    ['order:42:lines', 'order'],
    ['nightly-report', 'nightly-report'],
    ['{tenant}:job', '{tenant}'],
    [':42', ''],
  ])('%s → %s', (key, name) => expect(defaultMetricName(key)).toBe(name));
});

describe('module options', () => {
  it('openTelemetry defaults to true; metricName to none', () => {
    const o = validateModuleOptions({ connections: ['redis://a'] });
    expect(o.openTelemetry).toBe(true);
    expect(o.metricName).toBeUndefined();
  });

  it('keeps valid values', () => {
    const metricName = (k: string) => k;
    const o = validateModuleOptions({
      connections: ['redis://a'],
      metricName,
      openTelemetry: false,
    });
    expect(o.metricName).toBe(metricName);
    expect(o.openTelemetry).toBe(false);
  });

  it.each([
    ['metricName', 'order'],
    ['metricName', null],
    ['openTelemetry', 'yes'],
    ['openTelemetry', 1],
  ])('rejects %s = %p naming the option', (field, value) => {
    const call = () => validateModuleOptions({ connections: ['redis://a'], [field]: value });
    expect(call).toThrow(DistributedLockConfigError);
    expect(call).toThrow(expect.objectContaining({ field }) as Error);
  });
});

describe('OpenTelemetry listener', () => {
  it('records into an SDK registered after the module started (the metrics API has no proxy)', async () => {
    const events = hub();
    events.emit(acquired('order:1')); // no SDK yet: a no-op, and no error
    install();
    events.emit(acquired('order:2'));
    expect(await points('lock.acquire.duration')).toHaveLength(1);
    expect(spans.getFinishedSpans()).toHaveLength(1);
    // lock.held is read at collection: it counts the lock taken before the SDK too.
    expect(await points('lock.held')).toEqual([
      ['{"lock.name":"order","lock.store":"default"}', 2],
    ]);
  });

  it('no tracer SDK behind the global proxy: builds no span and reads no context, until one registers', () => {
    const events = hub();
    const active = jest.spyOn(context, 'active');
    try {
      events.emit(acquired('order:1'));
      expect(active).not.toHaveBeenCalled();
      install();
      events.emit(acquired('order:2'));
      expect(active).toHaveBeenCalled();
      expect(spans.getFinishedSpans().map((s) => s.attributes['lock.name'])).toEqual(['order']);
      // Unregistered again (a new proxy with no delegate): back to building nothing.
      trace.disable();
      const calls = active.mock.calls.length;
      events.emit(acquired('order:3'));
      expect(active).toHaveBeenCalledTimes(calls);
      expect(spans.getFinishedSpans()).toHaveLength(1);
    } finally {
      active.mockRestore();
    }
  });

  it('follows a replaced global provider', async () => {
    install();
    const events = hub();
    events.emit(acquired('order:1'));
    metrics.disable();
    const second = new PullReader();
    const next = new SdkMeterProvider({ readers: [second] });
    metrics.setGlobalMeterProvider(next);
    events.emit(acquired('order:2'));
    const { resourceMetrics } = await second.collect();
    const held = resourceMetrics.scopeMetrics[0].metrics.find(
      (m) => m.descriptor.name === 'lock.held',
    );
    expect(held?.dataPoints.map((p) => p.value)).toEqual([2]);
    const duration = resourceMetrics.scopeMetrics[0].metrics.find(
      (m) => m.descriptor.name === 'lock.acquire.duration',
    );
    expect(duration?.dataPoints).toHaveLength(1);
    await next.shutdown();
  });

  it('a metricName that throws or returns no string: default name, one warning, never an error', async () => {
    install();
    let call = 0;
    const events = hub((key) => {
      call += 1;
      if (call === 1) throw new Error('boom');
      if (call === 2) return 42 as unknown as string;
      return call === 3 ? '' : `custom:${key}`;
    });
    for (const key of ['order:1', 'order:2', 'order:3', 'order:4']) {
      expect(() => events.emit(acquired(key))).not.toThrow();
    }
    expect(await points('lock.held')).toEqual([
      ['{"lock.name":"order","lock.store":"default"}', 3],
      ['{"lock.name":"custom:order:4","lock.store":"default"}', 1],
    ]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/metricName threw boom/);
  });

  it('lock.held stays right past the name cache bound (a metricName with ids in it)', async () => {
    install();
    const events = hub((key) => key);
    const base = { at: Date.now(), store: 'default', durationMs: 1, fencingToken: 1 };
    for (let i = 0; i < 1_005; i += 1) events.emit(acquired(`k${i}`));
    for (let i = 0; i < 1_005; i += 1) {
      if (i !== 1_002) events.emit({ type: 'released', keys: [`k${i}`], ...base });
    }
    const held = await points('lock.held');
    expect(held.filter(([, v]) => v !== 0)).toEqual([
      ['{"lock.name":"k1002","lock.store":"default"}', 1],
    ]);
    // Every name that was held has a series, those past the bound too (reported back at 0).
    expect(held).toHaveLength(1_005);
    events.emit({ type: 'released', keys: ['k1002'], ...base });
    const after = await points('lock.held');
    expect(after).toHaveLength(1_005);
    expect(after.every(([, v]) => v === 0)).toBe(true);
  });

  it('@Exclusive events are named after the handler, whatever metricName says', async () => {
    install();
    const events = hub(() => 'renamed');
    events.emit(acquired('report:7', 'Reports.build'));
    expect(await points('lock.held')).toEqual([
      ['{"lock.name":"Reports.build","lock.store":"default"}', 1],
    ]);
  });

  it('puts the permit of a limited lock on its span, never on metrics', async () => {
    install();
    const events = hub();
    events.emit({ ...acquired('export:1'), permit: 2 } as LockEvent);
    const [span] = spans.getFinishedSpans();
    expect(span.attributes).toMatchObject({ 'lock.permit': 2 });
    expect(await points('lock.held')).toEqual([
      ['{"lock.name":"export","lock.store":"default"}', 1],
    ]);
  });

  it('an SDK that throws never reaches the lock call: reported once, recording goes on', () => {
    const broken: MeterProvider = {
      getMeter: () =>
        ({
          createHistogram: () => ({
            record: () => {
              throw new Error('exporter exploded');
            },
          }),
          createObservableUpDownCounter: () => ({ addCallback: () => undefined }),
          createCounter: () => ({ add: () => undefined }),
        }) as unknown as Meter,
    };
    metrics.setGlobalMeterProvider(broken);
    const events = hub();
    expect(() => events.emit(acquired('order:1'))).not.toThrow();
    expect(() => events.emit(acquired('order:2'))).not.toThrow();
    expect(warnings).toEqual([
      expect.stringMatching(/OpenTelemetry recording failed.*exporter exploded/) as string,
    ]);
  });

  it('lock.leader is 1 while this replica leads an election, 0 once it stepped down', async () => {
    install();
    const events = hub();
    const base = { keys: ['outbox'], at: Date.now(), store: 'default', handler: 'Relay.run' };
    expect(await points('lock.leader')).toEqual([]);
    events.emit({ type: 'elected', ...base, term: 7, since: Date.now() });
    expect(await points('lock.leader')).toEqual([
      ['{"lock.name":"outbox","lock.store":"default"}', 1],
    ]);
    events.emit({ type: 'stepped-down', ...base, term: 7, reason: 'resigned', durationMs: 5 });
    expect(await points('lock.leader')).toEqual([
      ['{"lock.name":"outbox","lock.store":"default"}', 0],
    ]);
  });

  it('released, lost and skipped events: held back to 0, lost and skipped counted by reason', async () => {
    install();
    const events = hub();
    const base = {
      keys: ['job:1'],
      at: Date.now(),
      store: 'default',
      durationMs: 5,
      fencingToken: 1,
    };
    events.emit(acquired('job:1'));
    events.emit({ type: 'lost', reason: 'extend-failed', ...base });
    events.emit(acquired('job:1'));
    events.emit({ type: 'released', ...base });
    events.emit({ type: 'extended', ...base });
    events.emit({
      type: 'skipped',
      keys: ['job:1'],
      at: 1,
      handler: 'Jobs.run',
      store: 'default',
      reason: 'busy',
    });
    events.emit({
      type: 'skipped',
      keys: ['job:1'],
      at: 1,
      handler: 'Jobs.run',
      store: 'default',
      reason: 'busy',
    });
    expect(await points('lock.held')).toEqual([['{"lock.name":"job","lock.store":"default"}', 0]]);
    expect(await points('lock.lost')).toEqual([
      ['{"lock.name":"job","lock.store":"default","lock.reason":"extend-failed"}', 1],
    ]);
    expect(await points('lock.skipped')).toEqual([
      ['{"lock.name":"Jobs.run","lock.store":"default","lock.reason":"busy"}', 2],
    ]);
  });
});
