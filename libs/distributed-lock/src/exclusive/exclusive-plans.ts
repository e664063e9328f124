import { Injectable } from '@nestjs/common';
import type { LockSkipReason } from '../events/lock-event.interface';
import { LockManager } from '../lock-manager';
import { Messages } from '../distributed-lock.messages';
import { exclusiveError, planExclusive, type ExclusivePlan } from './exclusive-plan';
import type { ExclusiveMetadata } from './exclusive-options.interface';
import { ExclusiveExplorer } from './exclusive.explorer';

/**
 * The `@Exclusive()` plans: every decorated method's options resolved once against the module
 * options and stores (at bootstrap, before any store connects, through `LockManager.beforeConnect`),
 * and what an invocation needs from the runtime. Injected into decorated classes.
 * @internal
 */
@Injectable()
export class ExclusivePlans {
  // Weak: a job added at runtime (ExclusiveScheduler) and deleted later takes its plan with it.
  private readonly plans = new WeakMap<object, ExclusivePlan>();

  constructor(
    /** The runtime the invocations lock through. */
    readonly manager: LockManager,
    explorer: ExclusiveExplorer,
  ) {
    manager.beforeConnect(() => explorer.explore((fn, meta) => this.register(fn, meta)));
  }

  /** The plan of an `@Exclusive()` method: resolved at bootstrap by the explorer, else now. */
  planFor(fn: object, meta: ExclusiveMetadata): ExclusivePlan {
    return this.plans.get(fn) ?? this.register(fn, meta);
  }

  /** Resolves and remembers the plan of `fn`; throws `DistributedLockConfigError` for bad options. */
  register(fn: object, meta: ExclusiveMetadata): ExclusivePlan {
    const plan = planExclusive(meta, fn, this.manager.options, (store, fail) =>
      this.manager.storeName(store, fail),
    );
    if (plan.limit > 1 && this.manager.backendOf(plan.store).limits !== true) {
      const backend = this.manager.backendOf(plan.store);
      throw exclusiveError(plan.where)(
        'limit',
        Messages.limitUnsupported(plan.store, backend.name),
      );
    }
    this.plans.set(fn, plan);
    return plan;
  }

  /** Records that an invocation of `plan`'s method did not run. */
  skipped(
    plan: ExclusivePlan,
    keys: string[],
    reason: LockSkipReason,
    detail: { tick?: number; error?: string } = {},
  ): undefined {
    return this.manager.emitter.skipped(
      { keys, handler: plan.where, store: plan.store },
      reason,
      detail,
    );
  }
}
