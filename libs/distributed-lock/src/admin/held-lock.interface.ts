/**
 * What a held key is: a plain lock (or a permit of one), a leader election, a cron tick claim
 * (the same union as backend/held-key.ts's internal `HeldKind`).
 */
export type HeldLockKind = 'lock' | 'leader' | 'tick-claim';

/** One lock held now, as `LockAdmin.list()` and the CLI report it. Never the lock value. */
export interface HeldLock {
  /** The key as the application named it, without `keyPrefix` (and without the tick, leader or permit suffix). */
  readonly key: string;
  /** The store it is held in: `'default'`, or a name from the module's `stores`. */
  readonly store: string;
  /** `'lock'`, `'leader'` (a leader election named `key`) or `'tick-claim'` (a claimed cron tick of `key`). */
  readonly kind: HeldLockKind;
  /** Who holds it: the holder's `identity` module option (`''` for a lock taken before identities). */
  readonly identity: string;
  /** The key's fencing token (0 for a tick claim on a store that issues none for claims). */
  readonly fencingToken: number;
  /** Epoch ms until which it is held (unless it is extended or released first). */
  readonly expiresAt: number;
  /** For a concurrency-limited key: which permit (1 … limit − 1); absent for permit 0 and mutexes. */
  readonly permit?: number;
}

/** Options of `LockAdmin.list()`. */
export interface ListHeldOptions {
  /** Only keys starting with this (without `keyPrefix`). @default '' (every key) */
  prefix?: string;
  /** The store to list. @default 'default' */
  store?: string;
  /** At most this many locks (1 … 100000). @default 1000 */
  limit?: number;
}

/** Options of `LockAdmin.forceRelease()`. */
export interface ForceReleaseOptions {
  /** The store the lock is held in. @default 'default' */
  store?: string;
  /** Why (for the `force-released` event and the log line), at most 500 characters. */
  reason?: string;
  /**
   * What to free under `key`: the lock itself (`'lock'`) or the leader election named `key`
   * (`'leader'`). A stored name such as `x:tick:<at>` may also be passed as `key` with `'lock'`.
   * @default 'lock'
   */
  kind?: 'lock' | 'leader';
  /** For a concurrency-limited key: the permit to free (as `HeldLock.permit`). @default 0 */
  permit?: number;
}
