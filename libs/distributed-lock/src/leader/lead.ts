import { leaderKey } from '../backend/held-key';
import { Messages } from '../distributed-lock.messages';
import { LockOperationUnsupportedError } from '../errors/lock-operation-unsupported.error';
import type { LockManager } from '../lock-manager';
import { resolveRun } from '../options/run-options';
import { argumentError } from '../options/validators';
import type { LeadOptions, LeaderInfo, LeaderInfoOptions, Leadership } from './leader.interface';
import { checkLeaderName, runTerm } from './leader-term';

function checkOptions(options: unknown): void {
  if (options === null || typeof options !== 'object') {
    throw argumentError('options', 'must be an object');
  }
}

/**
 * `LockService.lead()`: campaigns once for `name` (waiting as `options.wait` allows) and resolves
 * with the leadership, extended until `resign()` or loss; shutdown aborts it (reason `'shutdown'`)
 * and gives the holder `shutdownTimeout` to resign.
 * @throws InvalidLockArgumentError naming the field, before any store call
 * @throws LockBusyError when another replica still leads after `wait`
 * @throws LockUnavailableError when the store could not decide
 * @internal
 */
export async function lead(
  manager: LockManager,
  name: string,
  options: LeadOptions,
): Promise<Leadership> {
  checkLeaderName(name, argumentError);
  checkOptions(options);
  const store = manager.storeName(options.store);
  const run = resolveRun({ ttl: options.ttl }, manager.options, argumentError);
  const lock = await manager.acquireWith({
    keys: [leaderKey(name)],
    ttl: run.ttl,
    options: { wait: options.wait, store },
    stamp: true,
  });
  return new Promise<Leadership>((resolve, reject) => {
    runTerm(manager, lock, { name, store, run }, async (leadership) => {
      resolve(leadership);
      // At shutdown the holder has `shutdownTimeout` to stop and resign (the runtime's drain waits
      // for this work, then leaves the lease to expire): as a `@Leader` method has to return.
      if ((await leadership.ended) === 'shutdown') await leadership.resigned;
    }).catch(reject);
  });
}

/**
 * `LockService.leader()`: who leads `name` now, read from the store without campaigning.
 * @throws InvalidLockArgumentError for a bad name or an unknown store
 * @throws LockOperationUnsupportedError when the store's backend has no `inspect`
 * @throws LockUnavailableError when the store could not answer
 * @internal
 */
export async function leaderOf(
  manager: LockManager,
  name: string,
  options: LeaderInfoOptions,
): Promise<LeaderInfo | null> {
  checkLeaderName(name, argumentError);
  checkOptions(options);
  const store = manager.storeName(options.store);
  const backend = manager.backendOf(store);
  if (typeof backend.inspect !== 'function') {
    throw new LockOperationUnsupportedError(
      store,
      'inspect',
      Messages.leaderUnsupported(store, backend.name),
    );
  }
  const holder = await backend.inspect(leaderKey(name));
  if (holder === null) return null;
  return { name, identity: holder.identity, term: holder.fencingToken, since: holder.since };
}
