import { Inject, Injectable } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { DISTRIBUTED_LOCK_OPTIONS, EXCLUSIVE_METADATA } from '../distributed-lock.constants';
import { Messages } from '../distributed-lock.messages';
import type { ExclusivePlan } from './exclusive-plan';
import type { ResolvedLockOptions } from '../options/resolved-options';
import type { ExclusiveMetadata } from './exclusive-options.interface';

/**
 * Visits every `@Exclusive()` method at bootstrap, as `@nestjs/schedule`'s explorer visits its jobs:
 * resolves each method's options against the module options once (bad options fail the app's start
 * with `DistributedLockConfigError` naming the handler and the option), and warns about
 * request-scoped providers and about one explicit key shared by several handlers unless they are
 * marked `sharedKey: true`.
 * @internal
 */
@Injectable()
export class ExclusiveExplorer {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    @Inject(DISTRIBUTED_LOCK_OPTIONS) private readonly options: ResolvedLockOptions,
  ) {}

  /**
   * Resolves every `@Exclusive()` method with `register` (which throws for bad options). Called at bootstrap
   * (`LockManager.beforeConnect`, from `ExclusivePlans`) before any store connects: a bootstrap that fails here leaves no
   * connection open (Nest's `close()` runs no hook after a failed `init()`).
   */
  explore(register: (fn: object, meta: ExclusiveMetadata) => ExclusivePlan): void {
    const logger = this.options.logger;
    const byKey = new Map<string, { where: string[]; shared: boolean }>();
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const proto = (wrapper.metatype as { prototype?: object } | null)?.prototype;
      if (!proto || typeof wrapper.metatype !== 'function') continue;
      for (const name of this.scanner.getAllMethodNames(proto)) {
        const fn = (proto as Record<string, unknown>)[name];
        if (typeof fn !== 'function') continue;
        const meta = Reflect.getMetadata(EXCLUSIVE_METADATA, fn) as ExclusiveMetadata | undefined;
        if (!meta) continue;
        const { where } = register(fn, meta);
        if (!logger) continue;
        if (!wrapper.isDependencyTreeStatic()) logger.warn(Messages.requestScoped(where));
        if (typeof meta.options.key !== 'string') continue;
        const entry = byKey.get(meta.options.key) ?? { where: [], shared: true };
        if (!entry.where.includes(where)) entry.where.push(where);
        entry.shared &&= meta.options.sharedKey === true;
        byKey.set(meta.options.key, entry);
      }
    }
    for (const [key, { where, shared }] of byKey) {
      if (where.length > 1 && !shared) logger?.warn(Messages.sharedKey(key, where));
    }
  }
}
