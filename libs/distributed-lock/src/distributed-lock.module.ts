import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { ConfigurableDistributedLockModule } from './distributed-lock.module-definition';
import { distributedLockProviders } from './distributed-lock.providers';
import { LockAdmin } from './admin/lock-admin';
import { ExclusiveScheduler } from './exclusive/exclusive-scheduler';
import { ExclusiveExplorer } from './exclusive/exclusive.explorer';
import { ExclusivePlans } from './exclusive/exclusive-plans';
import { LeaderExplorer } from './leader/leader.explorer';
import { LockManager } from './lock-manager';
import { LockService } from './lock.service';

/**
 * Distributed locks for Nest: `LockService` and `@Exclusive()`, over one or more independent Redis
 * instances (Redlock), or another `backend`. Global by default (`isGlobal: false` to opt out).
 *
 * @example
 * ```ts
 * DistributedLockModule.forRoot({ connections: ['redis://localhost:6379'] })
 *
 * DistributedLockModule.forRootAsync({
 *   inject: [ConfigService],
 *   useFactory: (config: ConfigService) => ({ connections: config.get('REDIS_URLS').split(',') }),
 * })
 * ```
 */
@Module({
  imports: [DiscoveryModule],
  providers: [
    ...distributedLockProviders,
    LockManager,
    LockService,
    LockAdmin,
    ExclusiveScheduler,
    ExclusiveExplorer,
    ExclusivePlans,
    LeaderExplorer,
  ],
  // LockManager and ExclusivePlans are exported for the decorators' property injection in other
  // modules (and the testing kit); they are not part of the package's public API (not in index.ts).
  exports: [LockService, LockAdmin, ExclusiveScheduler, LockManager, ExclusivePlans],
})
export class DistributedLockModule extends ConfigurableDistributedLockModule {}
