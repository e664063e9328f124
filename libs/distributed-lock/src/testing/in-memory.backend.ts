import type {
  BackendAcquireOptions,
  BackendContext,
  BackendHeldKey,
  BackendHolder,
  BackendListQuery,
  BackendHealth,
  BackendLock,
  LockBackend,
} from '../backend/lock-backend.interface';
import { Messages } from '../distributed-lock.messages';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockLostError } from '../errors/lock-lost.error';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import { argumentError, checkInteger } from '../options/validators';
import { ReleaseWakeups } from '../backend/release-wakeups';
import { monotonicNow } from '../utils/clock';
import { limitOf, permitKeys } from '../backend/permits';

/** A lock as the in-memory store hands it out. */
interface MemoryLock extends BackendLock {
  /** The holder's identity: entries point at it, so a stale holder never matches a later one. */
  readonly owner: object;
  /** The stored keys it holds: the keys, or the permit's key of a limited one. */
  readonly stored: string[];
}

/** One key in the store. */
interface Entry {
  readonly owner: object;
  /** Who took it (the taking replica's identity; `'elsewhere'` for `holdElsewhere`). */
  readonly identity: string;
  /** The epoch ms stored with the acquisition (`BackendAcquireOptions.since`), 0 when none. */
  readonly since: number;
  /** Monotonic expiry (`monotonicNow()`); `Infinity` for a key held elsewhere without a TTL. */
  until: number;
}

/** The library's clock (utils/clock.ts): under jest fake timers, TTLs and waits follow them. */
const now = monotonicNow;

/**
 * The testing kit's store: one process, no I/O, the same contract as the Redis backend. Contention is
 * `LockBusyError`, a simulated outage is `LockUnavailableError` (for every call), an extension or
 * release of a lock that is no longer ours is `LockLostError`. Fencing tokens increase strictly per
 * key across every holder (including `holdElsewhere`) and are never reset. Keys expire by TTL on the
 * monotonic clock, checked when they are read (as Redis does), so the store owns no timers except
 * those of waiting acquisitions.
 *
 * Not exported from the package: `DistributedLockTestingModule` creates one per `forRoot()` and
 * `LockTestingController` drives it.
 */
export class InMemoryLockBackend implements LockBackend {
  /** @see LockBackend.name */
  readonly name = 'memory';
  /** @see LockBackend.limits */
  readonly limits = true;
  private readonly entries = new Map<string, Entry>();
  private readonly fences = new Map<string, number>();
  private readonly wakeups = new ReleaseWakeups();
  private down = false;
  /** This replica's identity (from `connect`), kept with each entry it takes. */
  identity = '';

  /** True while a simulated outage is on. */
  get unavailable(): boolean {
    return this.down;
  }

  /** Starts (`true`) or ends (`false`) a simulated outage: every lock operation then throws. */
  setUnavailable(down: boolean): void {
    this.down = down;
  }

  /** Nothing to connect; remembers the replica's identity. */
  connect(context?: BackendContext): Promise<void> {
    this.identity = context?.identity ?? '';
    return Promise.resolve();
  }

  /** Wakes waiting acquisitions (their timers are cleared); the store itself keeps its state. */
  close(): Promise<void> {
    this.wakeups.wakeAll();
    return Promise.resolve();
  }

  /** One instance, up unless an outage is simulated. */
  health(): Promise<BackendHealth> {
    return Promise.resolve({ instances: 1, up: this.down ? 0 : 1, quorum: 1 });
  }

  /**
   * Takes every key for `ttl` ms, all or none, and issues a fencing token above every earlier token of
   * each key. With `limit` > 1: the first free permit of the key (`permitKey(key, i)`).
   * @throws LockBusyError when another owner holds any of the keys (every permit, with a limit)
   * @throws LockUnavailableError during a simulated outage
   */
  acquire(keys: string[], ttl: number, options?: BackendAcquireOptions): Promise<BackendLock> {
    const limit = limitOf(options);
    return this.op(keys, () => {
      let stored = keys;
      let permit: number | undefined;
      if (limit > 1) {
        const slots = permitKeys(keys[0], limit);
        const free = slots.findIndex((key) => this.holder(key) === undefined);
        if (free >= 0) {
          stored = [slots[free]];
          permit = free;
        }
      }
      if (stored.some((key) => this.holder(key) !== undefined)) {
        throw new LockBusyError(keys, Messages.busy(keys));
      }
      const owner = {};
      const deadline = now() + ttl;
      const lock: MemoryLock = {
        owner,
        stored,
        deadline,
        validity: ttl,
        fencingToken: this.grant(stored, owner, deadline, this.identity, options?.since),
        ...(permit === undefined ? {} : { permit }),
      };
      return lock;
    });
  }

  /**
   * Sets the lock's TTL to `ttl` ms from now if every key is still ours.
   * @throws LockLostError when a key expired or is held by someone else
   * @throws LockUnavailableError during a simulated outage
   */
  extend(held: BackendLock, keys: string[], ttl: number): Promise<BackendLock> {
    const lock = held as MemoryLock;
    const stored = lock.stored ?? keys;
    return this.op(keys, () => {
      if (!stored.every((key) => this.holder(key) === lock.owner)) {
        throw new LockLostError(keys, Messages.lost(keys, 'no longer held by this owner'));
      }
      const deadline = now() + ttl;
      for (const key of stored) this.entries.get(key)!.until = deadline;
      const extended: MemoryLock = { ...lock, deadline, validity: ttl };
      return extended;
    });
  }

  /**
   * Deletes the keys that still hold this lock.
   * @throws LockLostError when some key no longer held it (those of a later holder stay untouched)
   * @throws LockUnavailableError during a simulated outage (the lock then expires by its TTL)
   */
  release(held: BackendLock, keys: string[]): Promise<void> {
    const lock = held as MemoryLock;
    const stored = lock.stored ?? keys;
    return this.op(keys, () => {
      const freed = this.free(stored, lock.owner);
      if (freed < stored.length) {
        throw new LockLostError(keys, Messages.lost(keys, 'no longer held by this owner'));
      }
    });
  }

  /** Like `release`, silently; during a simulated outage it does nothing (the lock expires). */
  discard(held: BackendLock, keys: string[]): void {
    const lock = held as MemoryLock;
    if (!this.down) this.free(lock.stored ?? keys, lock.owner);
  }

  /**
   * Takes `key` for `ttl` ms for nobody in particular (a cron tick claim); no fencing token.
   * @returns false when the key is held
   * @throws LockUnavailableError during a simulated outage
   */
  claim(key: string, ttl: number): Promise<boolean> {
    return this.op([key], () => {
      if (this.holder(key) !== undefined) return false;
      this.entries.set(key, { owner: {}, identity: this.identity, since: 0, until: now() + ttl });
      return true;
    });
  }

  /**
   * True while anyone (this app, `holdElsewhere`, a tick claim) holds `key`.
   * @throws LockUnavailableError during a simulated outage
   */
  isLocked(key: string): Promise<boolean> {
    return this.op([key], () => this.holder(key) !== undefined);
  }

  /**
   * Resolves when one of `keys` is released or expired by `expire` / `reset`, when one of them reaches
   * its TTL, or after `timeoutMs`, whichever comes first. Never rejects.
   */
  waitForRelease(keys: string[], timeoutMs: number): Promise<void> {
    let soonest = timeoutMs;
    for (const key of keys) {
      const entry = this.entries.get(key);
      if (entry) soonest = Math.min(soonest, entry.until - now());
    }
    return this.wakeups.sleep(keys, Math.ceil(soonest));
  }

  /**
   * Another replica takes `key`: for `ttl` ms, or until `expire(key)` / `reset()` without one. It gets
   * a fencing token like any holder.
   * @returns the other replica's fencing token
   * @throws LockBusyError when `key` is already held
   */
  holdElsewhere(key: string, ttl?: number): number {
    const until =
      ttl === undefined ? Infinity : now() + checkInteger('ttl', ttl, 1, undefined, argumentError);
    if (this.holder(key) !== undefined) throw new LockBusyError([key], Messages.heldHere(key));
    return this.grant([key], {}, until, 'elsewhere');
  }

  /**
   * Ends the lease holding `key` now: every key of that lock becomes free (whoever held it).
   * @returns the keys freed (empty when `key` was not held)
   */
  expire(key: string): string[] {
    const owner = this.holder(key);
    if (owner === undefined) return [];
    const keys = [...this.entries].filter(([, e]) => e.owner === owner).map(([k]) => k);
    this.free(keys, owner);
    return keys;
  }

  /**
   * The keys held now (sorted, at most `limit`), with holder identity, token and expiry.
   * @throws LockUnavailableError during a simulated outage
   */
  list(query: BackendListQuery): Promise<BackendHeldKey[]> {
    return this.op([], () => {
      const found: BackendHeldKey[] = [];
      const at = Date.now();
      const mono = now();
      for (const key of [...this.entries.keys()].sort()) {
        if (found.length >= query.limit) break;
        if (!key.startsWith(query.prefix) || this.holder(key) === undefined) continue;
        const entry = this.entries.get(key)!;
        found.push({
          key,
          identity: entry.identity,
          // Tick claims take no token; a key's counter is its last holder's token.
          fencingToken: this.fences.get(key) ?? 0,
          expiresAt:
            entry.until === Infinity
              ? Number.MAX_SAFE_INTEGER
              : Math.floor(at + entry.until - mono),
        });
      }
      return found;
    });
  }

  /**
   * Who holds `key` now (this app, `holdElsewhere`, a tick claim), or `null`.
   * @throws LockUnavailableError during a simulated outage
   */
  inspect(key: string): Promise<BackendHolder | null> {
    return this.op([key], () => {
      if (this.holder(key) === undefined) return null;
      const entry = this.entries.get(key)!;
      const holder: BackendHolder = {
        identity: entry.identity,
        since: entry.since,
        fencingToken: this.fences.get(key) ?? 0,
        expiresAt:
          entry.until === Infinity
            ? Number.MAX_SAFE_INTEGER
            : Math.floor(Date.now() + entry.until - now()),
      };
      return holder;
    });
  }

  /**
   * Frees `key` whoever holds it and advances its fencing counter in the same step: the stale
   * holder's extend and release find it lost, and the next token is higher than its own.
   * @returns true when the key was held
   * @throws LockUnavailableError during a simulated outage
   */
  forceRelease(key: string): Promise<boolean> {
    return this.op([key], () => {
      if (this.holder(key) === undefined) return false;
      this.entries.delete(key);
      const fence = this.fences.get(key);
      if (fence !== undefined) this.fences.set(key, fence + 1);
      this.announce([key]);
      return true;
    });
  }

  /** Forgets every lock and claim and ends any outage. Fencing tokens keep increasing. */
  reset(): string[] {
    const keys = [...this.entries.keys()];
    this.entries.clear();
    this.down = false;
    this.announce(keys);
    return keys;
  }

  /** The owner of `key` if it holds it now; drops the entry once its TTL has passed. */
  private holder(key: string): object | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.until > now()) return entry.owner;
    this.entries.delete(key);
    return undefined;
  }

  /** Stores the keys for `owner` and returns a token above every earlier token of each key. */
  private grant(
    keys: string[],
    owner: object,
    until: number,
    identity = this.identity,
    since = 0,
  ): number {
    let token = 0;
    for (const key of keys) token = Math.max(token, this.fences.get(key) ?? 0);
    token += 1;
    for (const key of keys) {
      this.fences.set(key, token);
      this.entries.set(key, { owner, identity, since, until });
    }
    return token;
  }

  /** Deletes the keys `owner` still holds; returns how many. */
  private free(keys: string[], owner: object): number {
    const freed = keys.filter((key) => this.holder(key) === owner);
    for (const key of freed) this.entries.delete(key);
    this.announce(freed);
    return freed.length;
  }

  private announce(keys: string[]): void {
    for (const key of keys) this.wakeups.wake(key);
  }

  /**
   * Runs one store operation a microtask later, as a round trip would: concurrent calls interleave
   * between operations, never inside one, and a throw becomes a rejection.
   */
  private op<T>(keys: string[], operation: () => T): Promise<T> {
    return Promise.resolve().then(() => {
      this.checkUp(keys);
      return operation();
    });
  }

  private checkUp(keys: string[]): void {
    if (this.down) {
      throw new LockUnavailableError(keys, Messages.simulatedOutage(keys), {
        total: 1,
        quorum: 1,
        granted: 0,
        held: 0,
        failed: 1,
      });
    }
  }
}
