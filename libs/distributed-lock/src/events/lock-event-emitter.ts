import { LockBusyError } from '../errors/lock-busy.error';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import type { LockEnd } from '../lock-handle';
import { monotonicNow } from '../utils/clock';
import type { LeaderStepDownReason, LockSkipReason } from './lock-event.interface';
import type { LockEvents } from './lock-events';

/** What an event says about the lock it is about. */
interface Subject {
  readonly keys: string[];
  readonly handler?: string;
  readonly store: string;
}

/** What an event says about a held lock. */
interface HeldSubject extends Subject {
  readonly grantedAt?: number;
  readonly fencingToken: number;
  /** The `limit` it was taken with (1: a mutex) and its permit. */
  readonly limit: number;
  readonly permit: number;
}

/**
 * Builds and emits every lock event of the runtime, in one place, and only when someone listens
 * (`LockEvents.observed`): an unobserved acquire or release builds no event object at all.
 * @internal
 */
export class LockEventEmitter {
  constructor(readonly events: LockEvents) {}

  /** A lock was granted, `start` (monotonic) being when the acquisition began. */
  acquired(subject: Subject, start: number, lock: HeldSubject): void {
    if (!this.events.observed) return;
    // Flat literals, one per shape: spreading helper objects into events cost a listener (the
    // OpenTelemetry one is on by default) more than the rest of its work (bench/profile.ts).
    const { keys, handler, store } = subject;
    const at = Date.now();
    const durationMs = monotonicNow() - start;
    const fencingToken = lock.fencingToken;
    this.events.emit(
      lock.limit > 1
        ? {
            type: 'acquired',
            keys,
            at,
            handler,
            store,
            durationMs,
            fencingToken,
            permit: lock.permit,
          }
        : { type: 'acquired', keys, at, handler, store, durationMs, fencingToken },
    );
  }

  /** An acquisition gave up with `error`: busy and unavailable are events, other errors are not. */
  failed(subject: Subject, start: number, error: unknown): void {
    if (!this.events.observed) return;
    const durationMs = monotonicNow() - start;
    if (error instanceof LockBusyError) {
      this.events.emit({ type: 'busy', ...fields(subject), durationMs });
    } else if (error instanceof LockUnavailableError) {
      this.events.emit({
        type: 'unavailable',
        ...fields(subject),
        durationMs,
        error: error.message,
      });
    }
  }

  /** A decorated invocation did not run. Returns `undefined`, the invocation's result. */
  skipped(
    subject: Subject & { readonly handler: string },
    reason: LockSkipReason,
    detail: { tick?: number; error?: string } = {},
  ): undefined {
    if (this.events.observed) {
      this.events.emit({
        type: 'skipped',
        ...fields(subject),
        handler: subject.handler,
        reason,
        ...detail,
      });
    }
    return undefined;
  }

  /** A held lock ended: released (or left to expire), or lost. */
  ended(subject: HeldSubject, end: LockEnd): void {
    if (!this.events.observed) return;
    const { keys, handler, store, fencingToken } = subject;
    const at = Date.now();
    const now = monotonicNow();
    const durationMs = now - (subject.grantedAt ?? now);
    const limited = subject.limit > 1;
    if (end === 'released' || end === 'left-to-expire') {
      this.events.emit(
        limited
          ? {
              type: 'released',
              keys,
              at,
              handler,
              store,
              durationMs,
              fencingToken,
              permit: subject.permit,
            }
          : { type: 'released', keys, at, handler, store, durationMs, fencingToken },
      );
    } else {
      this.events.emit(
        limited
          ? {
              type: 'lost',
              reason: end,
              keys,
              at,
              handler,
              store,
              durationMs,
              fencingToken,
              permit: subject.permit,
            }
          : { type: 'lost', reason: end, keys, at, handler, store, durationMs, fencingToken },
      );
    }
  }

  /** This replica was elected leader (`subject.keys`: the election's name). */
  elected(subject: Subject, term: number, since: number): void {
    if (!this.events.observed) return;
    this.events.emit({ type: 'elected', ...fields(subject), term, since });
  }

  /** This replica's leadership ended, `began` (monotonic) being when it was elected. */
  steppedDown(subject: Subject, term: number, reason: LeaderStepDownReason, began: number): void {
    if (!this.events.observed) return;
    this.events.emit({
      type: 'stepped-down',
      ...fields(subject),
      term,
      reason,
      durationMs: monotonicNow() - began,
    });
  }

  /** A held lock was extended; `durationMs` is how long the extension took. */
  extended(subject: HeldSubject, durationMs: number): void {
    if (!this.events.observed) return;
    const { keys, handler, store, fencingToken } = subject;
    const at = Date.now();
    this.events.emit(
      subject.limit > 1
        ? {
            type: 'extended',
            keys,
            at,
            handler,
            store,
            durationMs,
            fencingToken,
            permit: subject.permit,
          }
        : { type: 'extended', keys, at, handler, store, durationMs, fencingToken },
    );
  }
}

function fields(subject: Subject): {
  keys: string[];
  at: number;
  handler: string | undefined;
  store: string;
} {
  return { keys: subject.keys, at: Date.now(), handler: subject.handler, store: subject.store };
}
