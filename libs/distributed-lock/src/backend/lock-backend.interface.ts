/**
 * A lock as a backend hands it out. Backends may return richer objects (their own owner value, keys)
 * and get them back in `extend` / `release` / `discard`; callers only read these fields.
 */
export interface BackendLock {
  /** Monotonic (`monotonicNow()`) time until which the lock is valid. */
  readonly deadline: number;
  /** Validity left when the operation returned, in ms. */
  readonly validity: number;
  /** Strictly increasing per key across every holder (per key and permit with a `limit`). */
  readonly fencingToken: number;
  /**
   * Which permit (0 … limit − 1) an acquisition with `limit` > 1 took: the lock is held on
   * `permitKey(key, permit)`. Absent (0) for a mutex and for backends without limit support.
   */
  readonly permit?: number;
}

/** What an acquisition asks of a backend beyond keys and TTL. */
export interface BackendAcquireOptions {
  /**
   * Up to `limit` holders of the key at once (a counting semaphore): take any free one of the
   * permits `permitKey(key, 0 … limit − 1)`, each locked exactly like a mutex key. Only passed with
   * one key, and only to a backend whose `limits` is true. @default 1
   */
  readonly limit?: number;
  /**
   * Epoch ms to store beside the holder's identity in the same write that takes the key (a
   * leadership's `since`), read back by `inspect`. Never part of what proves ownership.
   */
  readonly since?: number;
}

/** Who holds one key now, as `inspect` reads it (never the lock value). */
export interface BackendHolder {
  /** The holder's identity stored beside the lock (`''` when it has none). */
  readonly identity: string;
  /** The fencing token of the holder's acquisition. */
  readonly fencingToken: number;
  /** The epoch ms stored with the acquisition (`BackendAcquireOptions.since`); 0 when none was. */
  readonly since: number;
  /** Epoch ms until which the key is held. */
  readonly expiresAt: number;
}

/** How much of a backend answers right now. */
export interface BackendHealth {
  /** Independent instances (Redis deployments, database servers) the backend votes over. */
  readonly instances: number;
  /** Instances that answered a health probe. */
  readonly up: number;
  /** Instances that must answer for a lock operation to succeed. */
  readonly quorum: number;
}

/** What `LockAdmin.list()` asks a backend for. */
export interface BackendListQuery {
  /** Only keys (without `keyPrefix`) starting with this; `''` for all. */
  readonly prefix: string;
  /** At most this many keys. */
  readonly limit: number;
}

/** One key a backend holds now, as `list` reports it (never the lock value). */
export interface BackendHeldKey {
  /** The stored key without `keyPrefix`, as named by backend/held-key.ts (`x:tick:<at>`, ...). */
  readonly key: string;
  /** The holder's identity stored beside the lock (`''` when it has none). */
  readonly identity: string;
  /** The key's fencing token (0 for a tick claim where the store issues none). */
  readonly fencingToken: number;
  /** Epoch ms until which the key is held. */
  readonly expiresAt: number;
}

/** What the module tells every backend once, at bootstrap (`connect`). */
export interface BackendContext {
  /**
   * Who this replica is (the module's `identity` option). A backend stores it beside each lock it
   * takes (in the same write, never in place of the secret lock value), for `LockAdmin.list()` and
   * `LockService.leader()`.
   */
  readonly identity: string;
}

/**
 * The store behind `LockService` and `@Exclusive()`. The module uses the Redis (Redlock) backend
 * unless `DistributedLockModule.forRoot({ backend })` names another (the testing kit's in-memory one,
 * PostgreSQL). Every method reports contention and outages with the library's typed errors:
 * `LockBusyError` (held by another owner), `LockUnavailableError` (the store could not decide),
 * `LockLostError` (no longer ours), `InvalidLockArgumentError` (keys the store cannot lock, before
 * any I/O). Keys are given without the module's `keyPrefix`; the backend applies its own naming.
 */
export interface LockBackend {
  /** What the store is called in messages and metrics, e.g. `'redis'`. */
  readonly name: string;
  /**
   * True when `acquire` honours `options.limit` (and sets `BackendLock.permit`). Without it the
   * module rejects `limit` > 1 for this store with `InvalidLockArgumentError` before any call.
   */
  readonly limits?: boolean;
  /**
   * Connects what the backend owns; called once at module init, with the replica's identity. Must
   * not throw for an outage.
   */
  connect(context: BackendContext): Promise<void>;
  /**
   * Takes every key for `ttl` ms (all or none) and issues a fencing token; with `options.limit` > 1,
   * one free permit of the (single) key. `extend` / `release` / `discard` then act on that permit.
   */
  acquire(keys: string[], ttl: number, options?: BackendAcquireOptions): Promise<BackendLock>;
  /** Sets the lock's TTL to `ttl` ms from now if it is still ours. */
  extend(lock: BackendLock, keys: string[], ttl: number): Promise<BackendLock>;
  /** Deletes the keys where they still hold this lock. */
  release(lock: BackendLock, keys: string[]): Promise<void>;
  /** Like `release`, fire-and-forget: for locks handed back unused (too late, shutting down). */
  discard(lock: BackendLock, keys: string[]): void;
  /** Takes `key` for `ttl` ms and never gives it back (a cron tick claim); false when taken. */
  claim(key: string, ttl: number): Promise<boolean>;
  /**
   * Optional: resolves when a release of one of `keys` is announced (Redis pub/sub, PostgreSQL
   * NOTIFY), or after `timeoutMs` at the latest; never rejects. A waiting acquisition sleeps on it
   * instead of a plain timer, so a waiter retries one round trip after the holder let go. Without it
   * waiting is pure backoff polling. Announcements may be lost: the timeout is the fallback.
   */
  waitForRelease?(keys: string[], timeoutMs: number): Promise<void>;
  /** True when `key` is held (by a majority, where that applies). */
  isLocked(key: string): Promise<boolean>;
  /** Probes every instance. Never throws. */
  health(): Promise<BackendHealth>;
  /**
   * Optional (for `LockAdmin` and the CLI): the keys held now, at most `query.limit` of them, read
   * without blocking the store (no `KEYS` on Redis). On a store with several instances a key is
   * listed when a majority holds the same value.
   * @throws LockUnavailableError when the store could not answer (no majority)
   */
  list?(query: BackendListQuery): Promise<BackendHeldKey[]>;
  /**
   * Optional (for `LockAdmin` and the CLI): frees `key` (as stored, without `keyPrefix`) whoever
   * holds it and, in the same atomic step, advances its fencing counter, so every token issued
   * after it is higher than the stale holder's. The stale holder's extend and release then find
   * the lock lost (they are owner-checked). Announces the release to waiters.
   * @returns true when something was held
   * @throws LockUnavailableError when the store could not answer (no majority)
   */
  forceRelease?(key: string): Promise<boolean>;
  /**
   * Optional (for `LockService.leader()`): who holds `key` (as stored, without `keyPrefix`) now,
   * read without taking it; `null` when nobody does. On a store with several instances the holder
   * is the value a majority holds.
   * @throws LockUnavailableError when the store could not answer (no majority)
   */
  inspect?(key: string): Promise<BackendHolder | null>;
  /** Closes what the backend owns (never what the user lent it). */
  close(): Promise<void>;
}

/** Injection token of the active {@link LockBackend} (an interface has no runtime value). */
export const LockBackend: unique symbol = Symbol('DISTRIBUTED_LOCK:BACKEND');
