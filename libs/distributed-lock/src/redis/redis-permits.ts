import type { BackendLock } from '../backend/lock-backend.interface';
import { granted, leaseOf } from '../backend/validity';
import type { DistributedLockError } from '../errors/distributed-lock.error';
import { LockBusyError } from '../errors/lock-busy.error';
import { monotonicNow } from '../utils/clock';
import { choosePermit, votePermits, type PermitTally, type PermitVote } from './permit-vote';
import { vote, type Tally, type Vote } from './quorum';
import { clockFloor } from './lock.scripts';

/**
 * Concurrency-limited acquisition on N Redis instances (docs/SAFETY.md, "Concurrency limits"). Each
 * permit is its own key, locked exactly like a mutex key by a Redlock majority; permits are never
 * counted across instances (independent counters let more than `limit` in when an instance fails).
 *
 * Step 1, one script per instance (one round trip, as for a mutex): take the first free permit
 * there, from a start permit drawn at random per attempt (the same on every instance). When a majority granted the same permit, it is won; the grants of other permits are
 * undone. Otherwise (contenders filled the free permits in different orders on different
 * instances) step 2 settles on one permit (`choosePermit`) and asks the instances that did not grant
 * it to move there (`TAKE_PERMIT`); that permit is won on a majority too, or everything is undone and
 * the attempt counts as a split vote (retried after a random pause, as for a mutex).
 * @internal
 */

/** A permit as the Redis backend holds it: a `RedisLock` on one permit key. @internal */
export interface RedisPermitLock extends BackendLock {
  readonly value: string;
  readonly redisKeys: string[];
  readonly permit: number;
}

/** What one attempt came to: a lock, or a split vote worth another try (with its busy error). */
export type PermitOutcome = { lock: RedisPermitLock } | { split: LockBusyError };

/** The parts of the Redis backend a permit acquisition uses. @internal */
export interface PermitEngine {
  readonly instances: number;
  readonly driftFactor: number;
  newValue(): string;
  /** Runs `ACQUIRE_PERMIT` on instance `i` (tracked by the stall watch). */
  acquireOn(
    i: number,
    keys: string[],
    fences: string[],
    value: string,
    ttl: number,
    floor: number,
    start: number,
  ): Promise<PermitVote>;
  /** Runs `TAKE_PERMIT` for `permit` on instance `i` (tracked). */
  takeOn(
    i: number,
    keys: string[],
    permit: number,
    fence: string,
    value: string,
    ttl: number,
    floor: number,
  ): Promise<Vote>;
  /** Writes `token` back to a majority still holding `key` for `value` (the FENCE script). */
  fence(key: string, fence: string, value: string, token: number): Promise<Tally>;
  /** Releases `keys` holding `value` on every instance that did not refuse. */
  undo(tally: Tally, keys: string[], value: string, until: number): void;
  /** Releases `keys` holding `value` on instance `i`, again on reconnect if need be. */
  releaseOn(i: number, keys: string[], value: string, until: number): void;
  failure(tally: Tally, keys: string[]): DistributedLockError;
  splitVote(tally: Tally, asks: Array<Promise<Vote>>, start: number): Promise<boolean>;
  discard(lock: BackendLock): void;
}

/** One attempt at any permit of `keys[0]`; `permitKeys` / `fenceKeys` are its stored keys, in order. */
export async function tryPermit(
  engine: PermitEngine,
  keys: string[],
  permitKeys: string[],
  fenceKeys: string[],
  ttl: number,
): Promise<PermitOutcome> {
  const start = monotonicNow();
  const value = engine.newValue();
  const floor = clockFloor();
  const until = start + ttl;
  const from = Math.floor(Math.random() * permitKeys.length);
  const asks = Array.from({ length: engine.instances }, (_, i) =>
    engine.acquireOn(i, permitKeys, fenceKeys, value, ttl, floor, from),
  );
  const first = await votePermits(engine.instances, (i) => asks[i]);
  let permit = first.winner;
  let decided: Tally = first;
  if (permit !== undefined) {
    // Instances that granted another permit, now or once they answer, give it back; an instance
    // whose answer is lost may hold any permit but the winner's. Usually every instance grants the
    // winner (same free permits everywhere): then nothing more is sent.
    const won = permit;
    const others = () => permitKeys.filter((_, p) => p !== won);
    for (let i = 0; i < engine.instances; i += 1) {
      if (first.refusedBy[i]) continue;
      const granted = first.permits.get(i);
      if (granted !== undefined) {
        if (granted !== won) engine.releaseOn(i, [permitKeys[granted]], value, until);
        continue;
      }
      void asks[i].then((v) => {
        if (v.kind === 'failed') engine.releaseOn(i, others(), value, until);
        else if (v.kind === 'for' && v.permit !== won) {
          engine.releaseOn(i, [permitKeys[v.permit]], value, until);
        }
      });
    }
  } else {
    permit = choosePermit(first);
    if (permit === undefined)
      return failed(engine, first, asks, keys, permitKeys, value, start, until);
    decided = await settle(engine, first, permit, permitKeys, fenceKeys, value, ttl, floor);
    if (!decided.ok) return failed(engine, decided, asks, keys, permitKeys, value, start, until);
  }
  let token = 0;
  let agree = true;
  for (const [i, t] of decided.granted) {
    if (decided === first && first.permits.get(i) !== permit) continue;
    if (token !== 0 && t !== token) agree = false;
    if (t > token) token = t;
  }
  const lock: RedisPermitLock = {
    ...leaseOf(start, ttl, engine.driftFactor),
    value,
    fencingToken: token,
    redisKeys: [permitKeys[permit]],
    permit,
  };
  if (!agree) {
    // As for a mutex: counters that disagree get the token written back to a majority (SAFETY.md).
    const fenced = await engine.fence(permitKeys[permit], fenceKeys[permit], value, token);
    if (!fenced.ok) {
      engine.discard(lock);
      throw engine.failure(fenced, keys);
    }
  }
  return { lock: granted(lock, keys, ttl, (l) => engine.discard(l)) };
}

/**
 * Step 2: every instance that did not grant `permit` is asked to move this attempt there; those that
 * did count as granted already. A plain majority vote on that one permit.
 */
function settle(
  engine: PermitEngine,
  first: PermitTally,
  permit: number,
  permitKeys: string[],
  fenceKeys: string[],
  value: string,
  ttl: number,
  floor: number,
): Promise<Tally> {
  return vote(engine.instances, (i) => {
    const token = first.permits.get(i) === permit ? first.granted.get(i) : undefined;
    if (token !== undefined) return Promise.resolve<Vote>({ kind: 'for', value: token });
    return engine.takeOn(i, permitKeys, permit, fenceKeys[permit], value, ttl, floor);
  });
}

/** Undoes a failed attempt everywhere and reports it: a split vote (retried), busy or unavailable. */
async function failed(
  engine: PermitEngine,
  tally: Tally,
  asks: Array<Promise<Vote>>,
  keys: string[],
  permitKeys: string[],
  value: string,
  start: number,
  until: number,
): Promise<PermitOutcome> {
  engine.undo(tally, permitKeys, value, until);
  const error = engine.failure(tally, keys);
  if (error instanceof LockBusyError && (await engine.splitVote(tally, asks, start))) {
    return { split: error };
  }
  throw error;
}
