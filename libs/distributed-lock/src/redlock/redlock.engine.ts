import {
  ExecutionError,
  Redlock,
  ResourceLockedError,
  type ExecutionStats,
  type Lock as RedlockLock,
} from '@sesamecare-oss/redlock';
import { performance } from 'node:perf_hooks';
import { Messages } from '../distributed-lock.messages';
import { DistributedLockError } from '../errors/distributed-lock.error';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockLostError } from '../errors/lock-lost.error';
import { LockUnavailableError, type LockVotes } from '../errors/lock-unavailable.error';
import type { LockClient } from '../redis/redis-instances';

/** A lock as the engine holds it: opaque outside the engine. @internal */
export interface EngineLock {
  /** Monotonic (`performance.now()`) time until which the lock is valid. */
  readonly deadline: number;
  /** Validity left when the operation returned, in ms. */
  readonly validity: number;
  /** @internal */
  readonly inner: RedlockLock;
}

/** What a failed vote means for the operation being voted on. */
type Verdict = 'busy' | 'lost' | 'unavailable';

/**
 * The Redlock algorithm over N independent Redis instances, on `@sesamecare-oss/redlock`'s
 * acquire/extend/release scripts. This is the only module that imports the redlock package.
 *
 * Redlock's own retries are off (we retry with our own backoff, and only on "busy"), and validity is
 * timed here with the monotonic clock, never `Date.now()`.
 * @internal
 */
export class RedlockEngine {
  private readonly redlock: Redlock;
  private readonly quorum: number;

  constructor(
    private readonly clients: LockClient[],
    private readonly keyPrefix: string,
    private readonly driftFactor: number,
  ) {
    this.redlock = new Redlock(clients, { retryCount: 0, driftFactor });
    this.quorum = Math.floor(clients.length / 2) + 1;
  }

  /** Milliseconds of validity lost to clock drift for a lock of `ttl` (Redlock: factor·ttl + 2). */
  drift(ttl: number): number {
    return Math.round(this.driftFactor * ttl) + 2;
  }

  /** Smallest validity worth handing out: 5% of the TTL and at least 1 ms. */
  private minValidity(ttl: number): number {
    return Math.max(1, ttl * 0.05);
  }

  /**
   * Acquires `keys` for `ttl` ms on a majority.
   * @throws LockBusyError when the instances that answered say another owner holds it
   * @throws LockUnavailableError when no majority answered, or too little validity was left
   */
  async acquire(keys: string[], ttl: number): Promise<EngineLock> {
    const start = performance.now();
    let inner: RedlockLock;
    try {
      inner = await this.redlock.acquire(this.prefixed(keys), ttl);
    } catch (error) {
      throw await this.translate(error, keys, 'busy');
    }
    const lock = this.measure(inner, start, ttl);
    if (lock.validity < this.minValidity(ttl)) {
      void this.release(lock, keys).catch(() => undefined);
      throw new LockUnavailableError(
        keys,
        Messages.lowValidity(keys, Math.floor(lock.validity), ttl),
      );
    }
    return lock;
  }

  /**
   * Sets the lock's TTL to `ttl` ms from now, if it is still ours on a majority.
   * @throws LockLostError when it is not
   * @throws LockUnavailableError when no majority answered
   */
  async extend(lock: EngineLock, keys: string[], ttl: number): Promise<EngineLock> {
    const start = performance.now();
    if (start >= lock.deadline)
      throw new LockLostError(keys, Messages.lost(keys, 'expired before it could be extended'));
    // redlock refuses to extend what it believes expired by Date.now(); our monotonic deadline rules.
    lock.inner.expiration = Number.MAX_SAFE_INTEGER;
    try {
      const inner = await this.redlock.extend(lock.inner, ttl);
      return this.measure(inner, start, ttl);
    } catch (error) {
      throw await this.translate(error, keys, 'lost');
    }
  }

  /**
   * Deletes the keys where they still hold our value.
   * @throws LockLostError when a majority no longer held them for us
   * @throws LockUnavailableError when no majority answered
   */
  async release(lock: EngineLock, keys: string[]): Promise<void> {
    try {
      await this.redlock.release(lock.inner);
    } catch (error) {
      throw await this.translate(error, keys, 'lost');
    }
  }

  /** True when a majority of instances hold `key`. @throws LockUnavailableError without a majority of answers */
  async isLocked(key: string): Promise<boolean> {
    const full = this.keyPrefix + key;
    const results = await Promise.allSettled(this.clients.map((c) => c.exists(full)));
    let held = 0;
    let answered = 0;
    let firstError: unknown;
    for (const r of results) {
      if (r.status === 'fulfilled') {
        answered += 1;
        if (r.value === 1) held += 1;
      } else firstError ??= r.reason;
    }
    if (held >= this.quorum) return true;
    if (answered < this.quorum) {
      throw new LockUnavailableError(
        [key],
        Messages.unavailable([key], answered, this.quorum, this.clients.length),
        {
          total: this.clients.length,
          quorum: this.quorum,
          granted: held,
          held,
          failed: this.clients.length - answered,
        },
        sanitize(firstError),
      );
    }
    return false;
  }

  private prefixed(keys: string[]): string[] {
    return this.keyPrefix ? keys.map((k) => this.keyPrefix + k) : keys;
  }

  private measure(inner: RedlockLock, start: number, ttl: number): EngineLock {
    const deadline = start + ttl - this.drift(ttl);
    return { inner, deadline, validity: deadline - performance.now() };
  }

  /** Turns redlock's error (which holds live clients, options and passwords) into one of ours. */
  private async translate(
    error: unknown,
    keys: string[],
    onRefused: Verdict,
  ): Promise<DistributedLockError> {
    if (!(error instanceof ExecutionError)) {
      return new DistributedLockError(
        `lock operation failed: ${(error as Error)?.message ?? String(error)}`,
      );
    }
    if (error.attempts.length === 0) return new LockLostError(keys, Messages.lost(keys, 'expired'));
    const stats: ExecutionStats = await error.attempts[error.attempts.length - 1];
    let refused = 0;
    let firstFailure: unknown;
    for (const e of stats.votesAgainst.values()) {
      if (e instanceof ResourceLockedError) refused += 1;
      else firstFailure ??= e;
    }
    const votes: LockVotes = {
      total: stats.membershipSize,
      quorum: stats.quorumSize,
      granted: stats.votesFor.size,
      held: refused,
      failed: stats.membershipSize - stats.votesFor.size - refused,
    };
    const answered = votes.granted + votes.held;
    if (refused > 0 && answered >= votes.quorum) {
      return onRefused === 'busy'
        ? new LockBusyError(keys, Messages.busy(keys))
        : new LockLostError(
            keys,
            Messages.lost(keys, 'no longer held by this owner on a majority'),
          );
    }
    return new LockUnavailableError(
      keys,
      Messages.unavailable(keys, answered, votes.quorum, votes.total),
      votes,
      sanitize(firstFailure),
    );
  }
}

/** Keeps an error's name and message only: ioredis errors carry command arguments (lock tokens). */
function sanitize(error: unknown): Error | undefined {
  if (!(error instanceof Error)) return undefined;
  const copy = new Error(error.message);
  copy.name = error.name;
  return copy;
}
