/** Why a held lock stopped being ours before its holder released it. */
export type LockLostReason =
  /** Its validity ran out: not extended in time, `lockAtMostFor` reached, or the process was frozen. */
  | 'expired'
  /** An extension found it no longer ours, or came back with no validity left. */
  | 'extend-failed'
  /** Shutdown reached `shutdownTimeout` with the work still running: abandoned, left to expire. */
  | 'shutdown';

/** Why an `@Exclusive()` invocation did not run its method. */
export type LockSkipReason =
  /** Another owner held the lock (`onBusy: 'skip'`, the default for scheduled handlers). */
  | 'busy'
  /** Another replica claimed this cron tick. */
  | 'tick-claimed'
  /** The application was shutting down. */
  | 'shutdown'
  /** The backend could not decide (no majority answered): fail closed. Scheduled handlers only. */
  | 'unavailable';

/** Why a leadership ended (`Leadership.signal.reason`, the `'stepped-down'` event's `reason`). */
export type LeaderStepDownReason =
  /** The leader let go: `resign()`, or its `@Leader` method returned or threw. */
  | 'resigned'
  /** The lease could not be kept (store unreachable, extension refused, paused past the deadline). */
  | 'lost'
  /** The application is shutting down. */
  | 'shutdown';

/** Fields every lock event has. */
export interface LockEventBase {
  /** The keys as the caller passed them (without `keyPrefix`). */
  readonly keys: string[];
  /** When it happened (epoch ms). */
  readonly at: number;
  /** `'ClassName.methodName'` when the lock belongs to an `@Exclusive()` method. */
  readonly handler?: string;
  /** The store it happened in: `'default'`, or a name from the module's `stores`. */
  readonly store: string;
}

/** A lock was granted. `durationMs`: from the call to the grant, waiting included. */
export interface LockAcquiredEvent extends LockEventBase {
  readonly type: 'acquired';
  readonly durationMs: number;
  readonly fencingToken: number;
  /** The permit held (0 … limit − 1), on locks acquired with `limit` > 1 only. */
  readonly permit?: number;
}

/** An acquisition gave up because another owner held the lock (after any waiting). */
export interface LockBusyEvent extends LockEventBase {
  readonly type: 'busy';
  readonly durationMs: number;
}

/** An acquisition failed because the backend could not decide (no majority answered). */
export interface LockUnavailableEvent extends LockEventBase {
  readonly type: 'unavailable';
  readonly durationMs: number;
  /** The error message (never a lock value or credential). */
  readonly error: string;
}

/** A held lock was extended. `durationMs`: how long the extension took. */
export interface LockExtendedEvent extends LockEventBase {
  readonly type: 'extended';
  readonly durationMs: number;
  readonly fencingToken: number;
  /** The permit held (0 … limit − 1), on locks acquired with `limit` > 1 only. */
  readonly permit?: number;
}

/** A held lock was lost. `durationMs`: how long it had been held. */
export interface LockLostEvent extends LockEventBase {
  readonly type: 'lost';
  readonly reason: LockLostReason;
  readonly durationMs: number;
  readonly fencingToken: number;
  /** The permit held (0 … limit − 1), on locks acquired with `limit` > 1 only. */
  readonly permit?: number;
}

/** The holder let a lock go (deleted, or left to expire for `lockAtLeastFor`). `durationMs`: held. */
export interface LockReleasedEvent extends LockEventBase {
  readonly type: 'released';
  readonly durationMs: number;
  readonly fencingToken: number;
  /** The permit held (0 … limit − 1), on locks acquired with `limit` > 1 only. */
  readonly permit?: number;
}

/** An `@Exclusive()` invocation did not run. `tick`: the cron fire time (epoch ms) it belonged to. */
export interface LockSkippedEvent extends LockEventBase {
  readonly type: 'skipped';
  readonly reason: LockSkipReason;
  readonly handler: string;
  readonly tick?: number;
  /** For `reason: 'unavailable'`: the error message. */
  readonly error?: string;
}

/**
 * An operator freed a lock through `LockAdmin.forceRelease` (or the CLI) in this app, whoever held it.
 * `keys`: the key freed; `reason`: what the operator gave (none when omitted). Its holder, wherever
 * it runs, finds the lock lost on its next extend or release (its own `lost` event, if it is here).
 */
export interface LockForceReleasedEvent extends LockEventBase {
  readonly type: 'force-released';
  /** The operator's reason, as given. */
  readonly reason?: string;
}

/**
 * This replica became leader of the election `keys[0]` (its name). `handler`: the `@Leader` method
 * (`'Class.method'`), absent for `LockService.lead()`.
 */
export interface LockElectedEvent extends LockEventBase {
  readonly type: 'elected';
  /** The leadership's term: the fencing token of its acquisition. */
  readonly term: number;
  /** When the leadership began (epoch ms), as `Leadership.since` and `LeaderInfo.since`. */
  readonly since: number;
}

/**
 * This replica's leadership of `keys[0]` ended; exactly once per term, always after its `'elected'`.
 * `durationMs`: how long it led.
 */
export interface LockSteppedDownEvent extends LockEventBase {
  readonly type: 'stepped-down';
  readonly term: number;
  readonly reason: LeaderStepDownReason;
  readonly durationMs: number;
}

/**
 * What `LockService.events` emits: one event per outcome, discriminated by `type`. Every acquired
 * lock ends with exactly one `released` or `lost` event. Never carries the lock value.
 */
export type LockEvent =
  | LockAcquiredEvent
  | LockBusyEvent
  | LockUnavailableEvent
  | LockExtendedEvent
  | LockLostEvent
  | LockReleasedEvent
  | LockSkippedEvent
  | LockForceReleasedEvent
  | LockElectedEvent
  | LockSteppedDownEvent;
