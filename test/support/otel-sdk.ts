import {
  context,
  metrics,
  ROOT_CONTEXT,
  trace,
  type Attributes,
  type Context,
  type ContextManager,
  type HrTime,
} from '@opentelemetry/api';
import {
  AggregationTemporality,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { LockEvent, LockService } from '@app/distributed-lock';
import { delay } from './lock-app';

/** A pull reader: metrics are read only when the test calls `collect()`. Cumulative temporality. */
class PullReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The context manager an OpenTelemetry Node SDK registers (AsyncLocalStorage), written out so the
 * tests need no extra package: `context.active()` follows the async call chain.
 */
class AsyncLocalContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.storage.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    const fn = target as (...args: unknown[]) => unknown;
    return ((...args: unknown[]) => this.with(ctx, () => fn(...args))) as T;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.storage.disable();
    return this;
  }
}

/** Milliseconds since the epoch of an OpenTelemetry `HrTime`. */
export const hrMs = ([s, ns]: HrTime): number => s * 1_000 + ns / 1e6;

/**
 * An OpenTelemetry SDK registered as the global providers, the way a user's `NodeSDK` does: a meter
 * provider with an in-memory pull reader, a tracer provider with an in-memory span exporter, and an
 * AsyncLocalStorage context manager.
 */
export class OtelTestSdk {
  readonly spans = new InMemorySpanExporter();
  private readonly reader = new PullReader();
  private readonly meterProvider = new MeterProvider({ readers: [this.reader] });
  private readonly tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(this.spans)],
  });

  /** Registers the globals; throws when some other SDK already did (it would get the data). */
  install(): this {
    const ok =
      metrics.setGlobalMeterProvider(this.meterProvider) &&
      trace.setGlobalTracerProvider(this.tracerProvider) &&
      context.setGlobalContextManager(new AsyncLocalContextManager());
    if (!ok) throw new Error('an OpenTelemetry global provider was already registered');
    return this;
  }

  /** Unregisters the globals and shuts the providers down. */
  async uninstall(): Promise<void> {
    metrics.disable();
    trace.disable();
    context.disable();
    await Promise.all([this.meterProvider.shutdown(), this.tracerProvider.shutdown()]);
  }

  /** Every metric of instrumentation scope `scope` now (cumulative since install). */
  async metrics(scope = 'nestjs-distributed-lock'): Promise<MetricData[]> {
    const { resourceMetrics, errors } = await this.reader.collect();
    if (errors.length > 0) throw new AggregateError(errors, 'metric collection failed');
    return resourceMetrics.scopeMetrics
      .filter((s) => s.scope.name === scope)
      .flatMap((s) => s.metrics);
  }

  /** The finished spans called `name` whose attribute `lock.name` is `lockName`. */
  lockSpans(lockName: string, name = 'lock.acquire'): ReadableSpan[] {
    return this.spans
      .getFinishedSpans()
      .filter((s) => s.name === name && s.attributes['lock.name'] === lockName);
  }
}

/** The data point of `metric` whose attributes are exactly `attributes`, if any. */
export function pointOf<T>(
  all: MetricData[],
  metric: string,
  attributes: Attributes,
): DataPoint<T> | undefined {
  const data = all.find((m) => m.descriptor.name === metric);
  const points = (data?.dataPoints ?? []) as DataPoint<T>[];
  const want = JSON.stringify(Object.entries(attributes).sort());
  return points.find((p) => JSON.stringify(Object.entries(p.attributes).sort()) === want);
}

/** The value of a sum data point (counter, up-down counter); `undefined` when never recorded. */
export const sumOf = (all: MetricData[], metric: string, attributes: Attributes) =>
  pointOf<number>(all, metric, attributes)?.value;

/** The value of a histogram data point; `undefined` when never recorded. */
export const histogramOf = (all: MetricData[], metric: string, attributes: Attributes) =>
  pointOf<Histogram>(all, metric, attributes)?.value;

/** Every data point whose `lock.name` attribute is `lockName`, as `metric {attrs} value` lines. */
export function pointsFor(all: MetricData[], lockName: string): string[] {
  return all.flatMap((m) =>
    (m.dataPoints as DataPoint<unknown>[])
      .filter((p) => p.attributes['lock.name'] === lockName)
      .map((p) => `${m.descriptor.name} ${JSON.stringify(p.attributes)}`),
  );
}

/** Every event of `locks`, in order, appended to `into` as it happens. */
export function record(locks: LockService, into: LockEvent[] = []): LockEvent[] {
  locks.events.subscribe((e) => into.push(e));
  return into;
}

/** Resolves once `events` holds an event matching `match`, or fails after `ms`. */
export async function waitFor(events: LockEvent[], match: (e: LockEvent) => boolean, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (!events.some(match)) {
    if (Date.now() > deadline) throw new Error(`no matching event within ${ms} ms`);
    await delay(10);
  }
}

/** Σ durationMs / 1000 and the count of `type` events, for comparing with a histogram. */
export function durations(events: LockEvent[], type: 'acquired' | 'busy' | 'unavailable') {
  const matching = events.filter((e) => e.type === type);
  return {
    count: matching.length,
    sum: matching.reduce((s, e) => s + ('durationMs' in e ? e.durationMs : 0), 0) / 1_000,
  };
}

/** Start and end of a span against the event it was made from: start = at − durationMs, end = at. */
export function expectSpanTimes(span: ReadableSpan, e: LockEvent & { durationMs: number }) {
  expect(hrMs(span.startTime)).toBeCloseTo(e.at - e.durationMs, 3);
  expect(hrMs(span.endTime)).toBeCloseTo(e.at, 3);
}
