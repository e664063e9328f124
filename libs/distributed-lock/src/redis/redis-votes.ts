import { Messages } from '../distributed-lock.messages';
import type { DistributedLockError } from '../errors/distributed-lock.error';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockLostError } from '../errors/lock-lost.error';
import { LockUnavailableError, type LockVotes } from '../errors/lock-unavailable.error';
import { sleep } from '../utils/backoff';
import { monotonicNow } from '../utils/clock';
import type { Tally, Vote } from './quorum';

/** What a refusal means for the operation being voted on. @internal */
export type Refusal = 'busy' | 'lost';

/** What the instances are called in messages. */
const NOUN = 'Redis instances';

/**
 * A vote that nobody won (each contender got some instances, none a majority) is undone and tried
 * again after a random pause this many times before it counts as busy. Pauses are drawn from
 * [1, SPLIT_PAUSE_MS * 2^attempt] ms, so contenders that collided once rarely collide again; five
 * retries bound the extra wait at about 125 ms, paid only when a vote splits.
 * @internal
 */
export const SPLIT_RETRIES = 5;
const SPLIT_PAUSE_MS = 4;

/** An acquire script's reply: the fencing token, or 0 when refused. @internal */
export function toAcquireVote(reply: unknown): Vote {
  const token = Number(reply);
  return token > 0 ? { kind: 'for', value: token } : { kind: 'refused' };
}

/** A grant whose value is 1, shared: votes are only read. @internal */
export const FOR_ONE: Vote = Object.freeze({ kind: 'for', value: 1 });
/** A refusal, shared: votes are only read. @internal */
export const REFUSED: Vote = Object.freeze({ kind: 'refused' });

/** A 1 / 0 script reply. @internal */
export function toBinaryVote(reply: unknown): Vote {
  return reply === 1 ? FOR_ONE : REFUSED;
}

/** Keeps an error's name and message only: ioredis errors carry command arguments (lock values). @internal */
export function sanitize(error: unknown): Error | undefined {
  if (!(error instanceof Error)) return undefined;
  const copy = new Error(error.message);
  copy.name = error.name;
  return copy;
}

/** A vote nobody won; `busy` is what it reports if the retries run out. @internal */
export class SplitVote {
  constructor(readonly busy: LockBusyError) {}
}

/** The random pause before split-vote retry `attempt` (0-based). @internal */
export function splitPause(attempt: number): Promise<void> {
  return sleep(1 + Math.random() * SPLIT_PAUSE_MS * 2 ** attempt);
}

/** Rejects (`no answer within <ms> ms`) when `promise` has not settled within `ms`. @internal */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * After a failed vote: did this contender win some instances? Grants already counted say so at
 * once. Otherwise instances that neither refused nor failed may still be answering: a contender
 * whose own grants come back last saw a majority refuse first (every contender of a split can).
 * Wait for them briefly (a few times as long as the vote took, within the command timeout). The
 * verdict runs in `setImmediate` after the timer: after a stall (a GC pause, a busy process) the
 * timer fires before the socket is read, and a grant that arrived in time must still count.
 * @internal
 */
export function splitVote(
  tally: Tally,
  asks: Array<Promise<Vote>>,
  start: number,
  commandTimeout: number,
): Promise<boolean> {
  if (tally.granted.size > 0) return Promise.resolve(true);
  const open = asks.filter((_, i) => !tally.refusedBy[i]);
  if (open.length === 0) return Promise.resolve(false);
  const bound = Math.min(commandTimeout, Math.max(10, 4 * (monotonicNow() - start)));
  return new Promise((resolve) => {
    let left = open.length;
    const timer = setTimeout(() => setImmediate(() => resolve(false)), bound);
    for (const ask of open) {
      void ask.then((v) => {
        if (v.kind === 'for' || (left -= 1) === 0) {
          clearTimeout(timer);
          resolve(v.kind === 'for');
        }
      });
    }
  });
}

/**
 * The typed error of a failed vote: busy (or lost, for an extension or release) when a majority
 * answered and some refused, unavailable otherwise.
 * @internal
 */
export function voteFailure(tally: Tally, keys: string[], refusal: Refusal): DistributedLockError {
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
      : new LockLostError(keys, Messages.lost(keys, 'no longer held by this owner on a majority'));
  }
  return new LockUnavailableError(
    keys,
    Messages.unavailable(keys, answered, votes.quorum, votes.total, NOUN, votes.failed),
    votes,
    sanitize(tally.firstError),
  );
}
