import { performance } from 'node:perf_hooks';
import { Messages } from '../distributed-lock.messages';
import type { DistributedLockError } from '../errors/distributed-lock.error';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockLostError } from '../errors/lock-lost.error';
import { LockUnavailableError, type LockVotes } from '../errors/lock-unavailable.error';
import type { LockClient } from '../redis/redis-instances';
import { newLockValue } from './lock-value';
import { ACQUIRE, EXTEND, FENCE, RELEASE } from './lock.scripts';
import { vote, type Tally, type Vote } from './quorum';

/** A lock as the engine holds it. @internal */
export interface EngineLock {
  /** Monotonic (`performance.now()`) time until which the lock is valid. */
  readonly deadline: number;
  /** Validity left when the operation returned, in ms. */
  validity: number;
  /** The random lock value (never logged). */
  readonly value: string;
  /** Strictly increasing per key across all holders. */
  readonly fencingToken: number;
  /** Redis keys of the locks (their fencing counters are only needed while acquiring). */
  readonly redisKeys: string[];
}

type Script = (numKeys: number, ...args: Array<string | number>) => Promise<unknown>;
interface ScriptClient {
  dlockAcquire: Script;
  dlockFence: Script;
  dlockExtend: Script;
  dlockRelease: Script;
}

/** What a refusal means for the operation being voted on. */
type Refusal = 'busy' | 'lost';

/**
 * The Redlock algorithm over N independent Redis instances, with fencing tokens, on our own Lua
 * scripts (docs/SAFETY.md says why they replaced `@sesamecare-oss/redlock`'s). Validity is timed with
 * the monotonic clock, and every outcome is decided as soon as a majority makes it certain.
 * @internal
 */
export class RedlockEngine {
  private readonly scripted: ScriptClient[];

  constructor(
    private readonly clients: LockClient[],
    private readonly keyPrefix: string,
    private readonly driftFactor: number,
    /** Issue fencing tokens. Off only in benchmarks, to measure what fencing costs. */
    private readonly fencing = true,
  ) {
    this.scripted = clients.map((client) => {
      const c = client as LockClient & Partial<ScriptClient>;
      if (typeof c.dlockAcquire !== 'function') {
        // ioredis runs these by EVALSHA and falls back to EVAL when the script is not cached yet.
        client.defineCommand('dlockAcquire', { lua: ACQUIRE });
        client.defineCommand('dlockFence', { lua: FENCE });
        client.defineCommand('dlockExtend', { lua: EXTEND });
        client.defineCommand('dlockRelease', { lua: RELEASE });
      }
      return c as unknown as ScriptClient;
    });
  }

  /** Milliseconds of validity lost to clock drift for a lock of `ttl` (Redlock: factor·ttl + 2). */
  drift(ttl: number): number {
    return Math.round(this.driftFactor * ttl) + 2;
  }

  /** The Redis key of a lock and of its fencing counter (a namespace of its own). */
  redisKey(key: string): string {
    return this.keyPrefix + key;
  }

  fenceKey(key: string): string {
    return `fence:${this.keyPrefix}${key}`;
  }

  /**
   * Acquires `keys` for `ttl` ms on a majority and issues a fencing token.
   * @throws LockBusyError when a majority answered and another owner holds it
   * @throws LockUnavailableError when no majority answered, or too little validity was left
   */
  async acquire(keys: string[], ttl: number): Promise<EngineLock> {
    const start = performance.now();
    const value = newLockValue();
    const redisKeys = keys.map((k) => this.redisKey(k));
    const fenceKeys = keys.map((k) => this.fenceKey(k));
    const n = keys.length;
    // Date.now() floors the counters (see lock.scripts.ts); one value for every instance of this attempt.
    const args = [...redisKeys, ...fenceKeys, value, ttl, n, this.fencing ? 1 : 0, Date.now()];
    const undo = (i: number) =>
      void this.scripted[i].dlockRelease(n, ...redisKeys, value).catch(() => undefined);
    const tally = await vote(
      this.clients.length,
      (i) => this.scripted[i].dlockAcquire(2 * n, ...args).then(toAcquireVote),
      undo,
    );
    if (!tally.ok) {
      for (const i of tally.granted.keys()) undo(i);
      throw this.failure(tally, keys, 'busy');
    }
    let token = 0;
    let agree = true;
    for (const t of tally.granted.values()) {
      if (token !== 0 && t !== token) agree = false;
      if (t > token) token = t;
    }
    const deadline = start + ttl - this.drift(ttl);
    const lock: EngineLock = {
      deadline,
      validity: 0,
      value,
      fencingToken: token,
      redisKeys,
    };
    // Counters that disagree (or several keys) need `token` written back to a majority that still
    // holds the lock, so every later majority meets a counter at least this high (docs/SAFETY.md).
    if (this.fencing && (!agree || n > 1)) {
      const fenced = await vote(this.clients.length, (i) =>
        this.scripted[i]
          .dlockFence(2 * n, ...redisKeys, ...fenceKeys, value, token, n)
          .then(toBinaryVote),
      );
      if (!fenced.ok) {
        void this.release(lock, keys).catch(() => undefined);
        throw this.failure(fenced, keys, 'busy');
      }
    }
    const validity = deadline - performance.now();
    if (validity < Math.max(1, ttl * 0.05)) {
      void this.release(lock, keys).catch(() => undefined);
      throw new LockUnavailableError(keys, Messages.lowValidity(keys, Math.floor(validity), ttl));
    }
    lock.validity = validity;
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
    const tally = await vote(this.clients.length, (i) =>
      this.scripted[i]
        .dlockExtend(lock.redisKeys.length, ...lock.redisKeys, lock.value, ttl)
        .then(toBinaryVote),
    );
    if (!tally.ok) throw this.failure(tally, keys, 'lost');
    return { ...lock, ...this.measure(start, ttl) };
  }

  /**
   * Deletes the keys where they still hold our value.
   * @throws LockLostError when a majority no longer held them for us
   * @throws LockUnavailableError when no majority answered
   */
  async release(lock: EngineLock, keys: string[]): Promise<void> {
    const n = lock.redisKeys.length;
    const tally = await vote(this.clients.length, (i) =>
      this.scripted[i]
        .dlockRelease(n, ...lock.redisKeys, lock.value)
        .then((r): Vote => (r === n ? { kind: 'for', value: 1 } : { kind: 'refused' })),
    );
    if (!tally.ok) throw this.failure(tally, keys, 'lost');
  }

  /**
   * Takes `key` for `ttl` ms on a majority and never gives it back (a cron tick claim): no fencing
   * counter, so claims leave nothing behind once they expire.
   * @returns false when another owner has it
   * @throws LockUnavailableError when no majority answered
   */
  async claim(key: string, ttl: number): Promise<boolean> {
    const full = this.redisKey(key);
    const value = newLockValue();
    const tally = await vote(this.clients.length, (i) =>
      this.clients[i]
        .set(full, value, 'PX', ttl, 'NX')
        .then((r): Vote => (r === 'OK' ? { kind: 'for', value: 1 } : { kind: 'refused' })),
    );
    if (tally.ok) return true;
    const error = this.failure(tally, [key], 'busy');
    if (error instanceof LockBusyError) return false;
    throw error;
  }

  /** True when a majority of instances hold `key`. @throws LockUnavailableError without a majority of answers */
  async isLocked(key: string): Promise<boolean> {
    const full = this.redisKey(key);
    const tally = await vote(this.clients.length, (i) =>
      this.clients[i]
        .exists(full)
        .then((r): Vote => (r === 1 ? { kind: 'for', value: 1 } : { kind: 'refused' })),
    );
    if (tally.ok) return true;
    if (tally.granted.size + tally.refused >= tally.quorum) return false;
    throw this.failure(tally, [key], 'busy');
  }

  private measure(start: number, ttl: number): { deadline: number; validity: number } {
    const deadline = start + ttl - this.drift(ttl);
    return { deadline, validity: deadline - performance.now() };
  }

  private failure(tally: Tally, keys: string[], refusal: Refusal): DistributedLockError {
    const votes: LockVotes = {
      total: tally.total,
      quorum: tally.quorum,
      granted: tally.granted.size,
      held: tally.refused,
      failed: tally.failed,
    };
    const answered = votes.granted + votes.held;
    if (votes.held > 0 && answered >= votes.quorum) {
      return refusal === 'busy'
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
      sanitize(tally.firstError),
    );
  }
}

function toAcquireVote(reply: unknown): Vote {
  const token = Number(reply);
  return token > 0 ? { kind: 'for', value: token } : { kind: 'refused' };
}

function toBinaryVote(reply: unknown): Vote {
  return reply === 1 ? { kind: 'for', value: 1 } : { kind: 'refused' };
}

/** Keeps an error's name and message only: ioredis errors carry command arguments (lock values). */
function sanitize(error: unknown): Error | undefined {
  if (!(error instanceof Error)) return undefined;
  const copy = new Error(error.message);
  copy.name = error.name;
  return copy;
}
