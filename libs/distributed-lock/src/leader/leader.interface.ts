import type { LeaderStepDownReason } from '../events/lock-event.interface';

/**
 * One term of leadership of a leader election, held by this replica: what a `@Leader` method
 * receives and what `LockService.lead()` resolves with. The lease behind it is extended while it
 * lasts; `signal` aborts the moment it ends, always before the lease can expire.
 *
 * @example
 * ```ts
 * @Leader('outbox-relay')
 * async relay(leadership: Leadership) {
 *   while (!leadership.signal.aborted) await this.sendBatch(leadership.term);
 * }
 * ```
 */
export interface Leadership {
  /** The election's name. */
  readonly name: string;
  /**
   * The term: the fencing token of this leadership's acquisition, strictly increasing from one
   * leadership of `name` to the next across every replica, and below 2^53. Pass it to the resource
   * the leader writes to, which rejects writes of an older term (`WHERE term >= $term`).
   */
  readonly term: number;
  /** When this leadership began (epoch ms); `LockService.leader()` reports the same value. */
  readonly since: number;
  /**
   * Aborts when the leadership ends; `signal.reason` says why: `'lost'` (always before the lease can
   * expire, so before a rival can be elected), `'shutdown'` or `'resigned'`. Check it before every
   * side effect.
   */
  readonly signal: AbortSignal;
  /**
   * Gives the leadership up now: aborts `signal` (reason `'resigned'`) and frees the election
   * (announced, so a waiting replica leads one round trip later). Idempotent; never throws (a store
   * failure is logged and the lease expires by its TTL).
   */
  resign(): Promise<void>;
}

/** Who leads an election now, as `LockService.leader()` reads it from the store. */
export interface LeaderInfo {
  /** The election's name. */
  readonly name: string;
  /** The leader replica's `identity` (module option, default `hostname:pid`). */
  readonly identity: string;
  /** The leader's term (its `Leadership.term`). */
  readonly term: number;
  /** When its leadership began (epoch ms), equal to its `Leadership.since`. */
  readonly since: number;
}

/** Options of `@Leader()` (or just the name as a string). */
export interface LeaderOptions {
  /**
   * The election's name: every replica with a `@Leader` of this name (in one store) campaigns for
   * the same leadership. Stored as the key `<name>:leader`.
   * @default 'ClassName.methodName'
   */
  readonly name?: string;
  /**
   * Lease TTL of the leadership (ms): how long a killed leader keeps it at most. Extended while the
   * method runs (at `extendThreshold`, half the TTL by default).
   * @default the module `ttl`
   */
  readonly ttl?: number;
  /** The store to elect in: `'default'` or a name from the module's `stores`. @default 'default' */
  readonly store?: string;
}

/** Options of `LockService.lead()`. */
export interface LeadOptions {
  /** How long to wait for the leadership (ms); `0` = one attempt. @default the module `retry` budget */
  readonly wait?: number;
  /** Lease TTL of the leadership (ms), extended until `resign()` or loss. @default the module `ttl` */
  readonly ttl?: number;
  /** The store to elect in. @default 'default' */
  readonly store?: string;
}

/** Options of `LockService.leader()`. */
export interface LeaderInfoOptions {
  /** The store the election runs in. @default 'default' */
  readonly store?: string;
}

export type { LeaderStepDownReason };
