import type {
  Attributes,
  Counter,
  Histogram,
  MeterProvider,
  ObservableGauge,
  ObservableCallback,
  ObservableUpDownCounter,
  Tracer,
  TracerProvider,
} from '@opentelemetry/api';
import { DEFAULT_STORE } from '../distributed-lock.constants';
import { Messages } from '../distributed-lock.messages';
import type { LockEvent } from '../events/lock-event.interface';
import type { LockEvents } from '../events/lock-events';
import { libraryVersion, loadOpenTelemetry, type OpenTelemetryApi } from './load-opentelemetry';
import { defaultMetricName } from './lock-metric-name';

/** The instrumentation scope (meter and tracer name) everything is recorded under. @internal */
export const INSTRUMENTATION_SCOPE = 'nestjs-distributed-lock';

/**
 * Histogram bucket boundaries for `lock.acquire.duration` (seconds), as advice to the SDK (API ≥ 1.7;
 * a user's View wins). The SDK's default buckets start at 0 and 5, made for milliseconds: every
 * acquisition would land in the first one. These resolve a sub-millisecond grant on loopback as well
 * as a wait of many seconds.
 * @internal
 */
export const ACQUIRE_DURATION_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/** Names whose attribute objects are kept; past that (a `metricName` with ids in it) none are. */
const MAX_CACHED_NAMES = 1_000;

/** The attribute objects of one `lock.name`, built once and passed to every recording. */
class NameAttributes {
  /** Locks of this name held now, reported by the `lock.held` callback. */
  heldNow = 0;
  /** Whether a lock of this name was ever held: only those have a `lock.held` series. */
  everHeld = false;
  readonly held: Attributes;
  readonly acquired: Attributes;
  readonly busy: Attributes;
  readonly unavailable: Attributes;
  private readonly lost = new Map<string, Attributes>();
  private readonly skipped = new Map<string, Attributes>();

  constructor(
    readonly name: string,
    readonly store: string,
    /** Its key in the caches: the name (default store), else store and name. */
    readonly cacheKey: string,
  ) {
    this.held = Object.freeze({ 'lock.name': name, 'lock.store': store });
    this.acquired = Object.freeze({ ...this.held, 'lock.outcome': 'acquired' });
    this.busy = Object.freeze({ ...this.held, 'lock.outcome': 'busy' });
    this.unavailable = Object.freeze({ ...this.held, 'lock.outcome': 'unavailable' });
  }

  lostFor(reason: string): Attributes {
    return this.withReason(this.lost, reason);
  }

  skippedFor(reason: string): Attributes {
    return this.withReason(this.skipped, reason);
  }

  private withReason(cache: Map<string, Attributes>, reason: string): Attributes {
    let attributes = cache.get(reason);
    if (attributes === undefined) {
      attributes = Object.freeze({ ...this.held, 'lock.reason': reason });
      cache.set(reason, attributes);
    }
    return attributes;
  }
}

/**
 * Records lock events as OpenTelemetry metrics and `lock.acquire` spans through the global providers.
 * Runs synchronously inside the lock call that emitted the event, so `context.active()` is the
 * caller's context (spans get the right parent) and it must stay cheap and never throw.
 *
 * Instruments are created once per global provider. The metrics API has no proxy provider: a meter
 * taken before the user's SDK registered would stay a no-op forever, so each event compares the
 * global providers (two property reads) and re-creates the instruments when they changed.
 *
 * `lock.held` is an asynchronous up-down counter over plain per-name counts, read at collection:
 * the same non-monotonic sum as a synchronous one fed +1 / −1, without two SDK recordings (attribute
 * hashing, aggregation) per lock, and right even for locks taken before the SDK registered.
 * @internal
 */
export class OpenTelemetryLockListener {
  private meterProvider: MeterProvider | undefined;
  private tracerProvider: TracerProvider | undefined;
  /** What the global proxy tracer provider delegates to (itself when it is no proxy). */
  private tracerDelegate: TracerProvider | undefined;
  /**
   * False while no SDK is behind the global tracer provider: every span would be a no-op, so none
   * is built (nor the caller's context read).
   */
  private tracing = true;
  private duration!: Histogram;
  private held: ObservableUpDownCounter | undefined;
  private lost!: Counter;
  private skipped!: Counter;
  private tracer!: Tracer;
  private leader: ObservableGauge | undefined;
  /** Per leader election (store and name): its attributes and 1 while this replica leads it. */
  private readonly leading = new Map<string, { attributes: Attributes; value: number }>();
  private readonly observeLeader: ObservableCallback = (result) => {
    for (const { attributes, value } of this.leading.values()) result.observe(value, attributes);
  };
  private readonly names = new Map<string, NameAttributes>();
  /** Names with locks held now that are not in `names` (past the cache bound). */
  private readonly uncachedHeld = new Map<string, NameAttributes>();
  private readonly observeHeld: ObservableCallback = (result) => {
    for (const names of this.names.values()) {
      if (names.everHeld) result.observe(names.heldNow, names.held);
    }
    for (const names of this.uncachedHeld.values()) {
      result.observe(names.heldNow, names.held);
      // Reported back at 0 (the SDK keeps a series at its last value): now it can be forgotten.
      if (names.heldNow === 0) this.uncachedHeld.delete(names.cacheKey);
    }
  };
  private readonly version = libraryVersion();
  private warnedName = false;
  private warnedFailure = false;

  constructor(
    private readonly api: OpenTelemetryApi,
    private readonly metricName: ((key: string) => string) | undefined,
    private readonly warn: (message: string) => void,
  ) {
    this.refresh();
  }

  /** Records one event. Never throws: a telemetry failure is reported once and never fails a lock call. */
  readonly record = (event: LockEvent): void => {
    try {
      this.recordEvent(event);
    } catch (error) {
      if (!this.warnedFailure) {
        this.warnedFailure = true;
        this.warn(
          Messages.openTelemetryFailed(error instanceof Error ? error.message : String(error)),
        );
      }
    }
  };

  private recordEvent(event: LockEvent): void {
    this.refresh();
    switch (event.type) {
      case 'acquired': {
        const names = this.attributesOf(event);
        this.duration.record(event.durationMs / 1_000, names.acquired);
        this.holding(names, 1);
        // The permit of a limited lock goes on its span only: as a metric attribute it would
        // multiply every series by the limit.
        const attributes =
          event.permit === undefined
            ? names.acquired
            : { ...names.acquired, 'lock.permit': event.permit };
        this.span(event.at, event.durationMs, attributes);
        return;
      }
      case 'busy': {
        const names = this.attributesOf(event);
        this.duration.record(event.durationMs / 1_000, names.busy);
        this.span(event.at, event.durationMs, names.busy);
        return;
      }
      case 'unavailable': {
        const names = this.attributesOf(event);
        this.duration.record(event.durationMs / 1_000, names.unavailable);
        this.span(event.at, event.durationMs, names.unavailable, event.error);
        return;
      }
      case 'released':
        this.holding(this.attributesOf(event), -1);
        return;
      case 'lost': {
        const names = this.attributesOf(event);
        this.holding(names, -1);
        this.lost.add(1, names.lostFor(event.reason));
        return;
      }
      case 'skipped':
        this.skipped.add(1, this.attributesOf(event).skippedFor(event.reason));
        return;
      case 'elected':
      case 'stepped-down':
        this.leads(event.keys[0], event.store, event.type === 'elected' ? 1 : 0);
        return;
      case 'extended':
      case 'force-released':
        // Nothing to record: the holder's own 'lost' / 'released' event settles `lock.held`.
        return;
    }
  }

  /** A finished `lock.acquire` span covering the acquisition, in the caller's context. */
  private span(at: number, durationMs: number, attributes: Attributes, error?: string): void {
    if (!this.tracing) return;
    const span = this.tracer.startSpan(
      'lock.acquire',
      { startTime: at - durationMs, attributes },
      this.api.context.active(),
    );
    if (error !== undefined)
      span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: error });
    span.end(at);
  }

  private attributesOf(event: LockEvent): NameAttributes {
    const name = event.handler ?? this.nameOfKey(event.keys[0]);
    const key = event.store === DEFAULT_STORE ? name : `${event.store}\u0000${name}`;
    let attributes = this.names.get(key) ?? this.uncachedHeld.get(key);
    if (attributes === undefined) {
      attributes = new NameAttributes(name, event.store, key);
      if (this.names.size < MAX_CACHED_NAMES) this.names.set(key, attributes);
    }
    return attributes;
  }

  /** Sets the `lock.leader` value of election `name` (its names are few: one per election). */
  private leads(name: string, store: string, value: number): void {
    const key = `${store}\u0000${name}`;
    const known = this.leading.get(key);
    if (known) known.value = value;
    else {
      const attributes = Object.freeze({ 'lock.name': name, 'lock.store': store });
      this.leading.set(key, { attributes, value });
    }
  }

  private holding(names: NameAttributes, change: 1 | -1): void {
    names.heldNow += change;
    names.everHeld = true;
    if (this.names.get(names.cacheKey) === names) return;
    // Past the cache bound: tracked while held and until the next collection reported it at 0.
    this.uncachedHeld.set(names.cacheKey, names);
  }

  private nameOfKey(key: string): string {
    if (this.metricName === undefined) return defaultMetricName(key);
    let name: unknown;
    try {
      name = this.metricName(key);
    } catch (error) {
      name = error instanceof Error ? error : new Error(String(error));
    }
    if (typeof name === 'string' && name.length > 0) return name;
    if (!this.warnedName) {
      this.warnedName = true;
      this.warn(
        Messages.metricNameFailed(
          name instanceof Error ? `threw ${name.message}` : `returned ${describe(name)}`,
        ),
      );
    }
    return defaultMetricName(key);
  }

  private refresh(): void {
    const meterProvider = this.api.metrics.getMeterProvider();
    if (meterProvider !== this.meterProvider) {
      this.meterProvider = meterProvider;
      const meter = meterProvider.getMeter(INSTRUMENTATION_SCOPE, this.version);
      this.duration = meter.createHistogram('lock.acquire.duration', {
        unit: 's',
        description:
          'Time from a lock request to its outcome (acquired, busy, unavailable), waiting included.',
        advice: { explicitBucketBoundaries: ACQUIRE_DURATION_BUCKETS },
      });
      this.held?.removeCallback(this.observeHeld);
      this.held = meter.createObservableUpDownCounter('lock.held', {
        unit: '{lock}',
        description: 'Locks this process holds.',
      });
      this.held.addCallback(this.observeHeld);
      this.leader?.removeCallback(this.observeLeader);
      // A meter without gauges (a partial SDK or a stub) only loses `lock.leader`.
      this.leader =
        typeof meter.createObservableGauge === 'function'
          ? meter.createObservableGauge('lock.leader', {
              unit: '{leader}',
              description:
                '1 while this replica leads the election lock.name, 0 once it stepped down.',
            })
          : undefined;
      this.leader?.addCallback(this.observeLeader);
      this.lost = meter.createCounter('lock.lost', {
        unit: '{lock}',
        description: 'Held locks that stopped being ours before their holder released them.',
      });
      this.skipped = meter.createCounter('lock.skipped', {
        unit: '{run}',
        description: '@Exclusive() invocations that did not run their method.',
      });
    }
    // The API hands out one proxy provider until `trace.disable()`; an SDK registering later becomes
    // its delegate, so the delegate is compared on every event too (one property read).
    const tracerProvider = this.api.trace.getTracerProvider();
    const proxy = asProxy(tracerProvider);
    const delegate = proxy === undefined ? tracerProvider : proxy.getDelegate();
    if (tracerProvider !== this.tracerProvider || delegate !== this.tracerDelegate) {
      this.tracerProvider = tracerProvider;
      this.tracerDelegate = delegate;
      this.tracer = tracerProvider.getTracer(INSTRUMENTATION_SCOPE, this.version);
      // A proxy with no delegate has no SDK behind it: its spans are no-ops.
      this.tracing =
        proxy === undefined ||
        proxy.getDelegateTracer(INSTRUMENTATION_SCOPE, this.version) !== undefined;
    }
  }
}

/** The API's proxy tracer provider (what `trace.getTracerProvider()` returns), if it is one. */
interface ProxyProvider extends TracerProvider {
  getDelegate(): TracerProvider;
  getDelegateTracer(name: string, version?: string): Tracer | undefined;
}

function asProxy(provider: TracerProvider): ProxyProvider | undefined {
  const p = provider as Partial<ProxyProvider>;
  return typeof p.getDelegate === 'function' && typeof p.getDelegateTracer === 'function'
    ? (p as ProxyProvider)
    : undefined;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : typeof value;
}

/**
 * Makes OpenTelemetry a listener of `events` when `@opentelemetry/api` is installed. Returns whether
 * it did; with the package absent it records nothing and changes nothing. Never throws: a broken
 * install is reported as a warning and the module runs without telemetry.
 * @internal
 */
export function attachOpenTelemetry(
  events: LockEvents,
  metricName?: (key: string) => string,
): boolean {
  const warn = (message: string) => events.notice('warn', message);
  try {
    const api = loadOpenTelemetry();
    if (api === null) return false;
    events.events.subscribe(new OpenTelemetryLockListener(api, metricName, warn).record);
    return true;
  } catch (error) {
    warn(Messages.openTelemetryUnloadable(error instanceof Error ? error.message : String(error)));
    return false;
  }
}
