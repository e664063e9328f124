import type { RunOptions } from '../interfaces/acquire-options.interface';
import { checkExtendWindow, extendThresholdFor } from './validate-options';
import type { ResolvedLockOptions } from './resolved-options';
import { checkBoolean, checkInteger, checkTtl, type ErrorFactory } from './validators';

/** Run options after validation, module defaults filled in. @internal */
export interface ResolvedRun {
  readonly ttl: number;
  readonly autoExtend: boolean;
  /** When auto-extension renews (ms of validity left). */
  readonly extendThreshold: number;
  readonly lockAtLeastFor: number;
  readonly lockAtMostFor: number | undefined;
}

/**
 * Checks the run fields that need no module context (types, ranges, `lockAtLeastFor <=
 * lockAtMostFor`). `@Exclusive()` calls it when applied; `resolveRun` calls it again.
 * @internal
 */
export function checkRunFields(options: RunOptions, fail: ErrorFactory): void {
  if (options.ttl !== undefined) checkInteger('ttl', options.ttl, 1, undefined, fail);
  if (options.autoExtend !== undefined) checkBoolean('autoExtend', options.autoExtend, fail);
  if (options.lockAtLeastFor !== undefined)
    checkInteger('lockAtLeastFor', options.lockAtLeastFor, 0, undefined, fail);
  if (options.lockAtMostFor !== undefined)
    checkInteger('lockAtMostFor', options.lockAtMostFor, 1, undefined, fail);
  if (
    options.lockAtMostFor !== undefined &&
    options.lockAtLeastFor !== undefined &&
    options.lockAtLeastFor > options.lockAtMostFor
  ) {
    throw fail(
      'lockAtLeastFor',
      `must not exceed lockAtMostFor (${options.lockAtMostFor}), got ${options.lockAtLeastFor}`,
    );
  }
}

/**
 * Validates run options against the module options and fills in defaults: the one place the run
 * fields of `runExclusive` and `@Exclusive()` are checked. `@Exclusive()` methods are resolved once,
 * at bootstrap (so bad options fail the app's start); `runExclusive` resolves per call.
 * @internal
 */
export function resolveRun(
  options: RunOptions,
  module: Pick<ResolvedLockOptions, 'ttl' | 'extendThreshold' | 'minTtl'>,
  fail: ErrorFactory,
): ResolvedRun {
  checkRunFields(options, fail);
  const autoExtend = options.autoExtend ?? true;
  const lockAtLeastFor = options.lockAtLeastFor ?? 0;
  const lockAtMostFor = options.lockAtMostFor;
  let ttl =
    options.ttl === undefined ? module.ttl : checkTtl('ttl', options.ttl, module.minTtl, fail);
  if (lockAtMostFor !== undefined && lockAtMostFor < ttl) {
    // The lock is taken for lockAtMostFor then: it must be grantable too.
    ttl = checkTtl('lockAtMostFor', lockAtMostFor, module.minTtl, fail);
  }
  if (autoExtend && (lockAtMostFor === undefined || lockAtMostFor > ttl)) {
    checkExtendWindow(ttl, module.extendThreshold, 'ttl', fail);
  }
  return {
    ttl,
    autoExtend,
    extendThreshold: extendThresholdFor(ttl, module.extendThreshold),
    lockAtLeastFor,
    lockAtMostFor,
  };
}
