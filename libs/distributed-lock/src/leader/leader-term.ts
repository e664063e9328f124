import { leaderKey } from '../backend/held-key';
import { MAX_KEY_LENGTH } from '../distributed-lock.constants';
import { Messages } from '../distributed-lock.messages';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import type { LockHandle } from '../lock-handle';
import type { LockManager } from '../lock-manager';
import type { ResolvedRun } from '../options/run-options';
import type { ErrorFactory } from '../options/validators';
import { LeadershipHandle, stepDownGuard } from './leadership';

/**
 * Checks an election name: a non-empty string that fits a key once `:leader` is added.
 * @throws what `fail` builds, with field `name`
 * @internal
 */
export function checkLeaderName(name: unknown, fail: ErrorFactory): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw fail('name', Messages.leaderName(typeof name === 'string' ? '""' : typeof name));
  }
  if (leaderKey(name).length > MAX_KEY_LENGTH) {
    throw fail(
      'name',
      `must be at most ${MAX_KEY_LENGTH - ':leader'.length} characters, got ${name.length}`,
    );
  }
  return name;
}

/** How a term is run: the election, its lease settings and the `@Leader` method if any. @internal */
export interface TermPlan {
  readonly name: string;
  readonly store: string;
  readonly run: ResolvedRun;
  readonly handler?: string;
}

/**
 * Runs one term on a granted leader lock, through the runtime's work runner (auto-extension,
 * counted as running for shutdown, released when it ends): builds the leadership, hands it to
 * `body`, and ends it once `body` has settled (a returned or thrown method resigns). Resolves or
 * rejects as `body` does, after the release.
 * @throws LockUnavailableError when the store issued a term beyond 2^53 (refused, released)
 * @internal
 */
export function runTerm<T>(
  manager: LockManager,
  lock: LockHandle,
  plan: TermPlan,
  body: (leadership: LeadershipHandle) => Promise<T>,
): Promise<T> {
  return manager.runHolding(
    lock,
    async () => {
      if (!Number.isSafeInteger(lock.fencingToken)) {
        throw new LockUnavailableError(
          [plan.name],
          Messages.leaderTermUnsafe(plan.name, String(lock.fencingToken)),
        );
      }
      const guard = stepDownGuard(plan.run.ttl, plan.run.extendThreshold);
      const leadership = new LeadershipHandle(
        manager,
        lock,
        plan.name,
        guard,
        plan.handler,
      ).start();
      try {
        return await body(leadership);
      } finally {
        leadership.stepDown('resigned');
      }
    },
    plan.run,
  );
}
