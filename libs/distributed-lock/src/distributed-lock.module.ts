import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { DISTRIBUTED_LOCK_OPTIONS } from './distributed-lock.constants';
import {
  ConfigurableDistributedLockModule,
  RAW_OPTIONS_TOKEN,
} from './distributed-lock.module-definition';
import type { DistributedLockModuleOptions } from './interfaces/module-options.interface';
import { ExclusiveExplorer } from './exclusive/exclusive.explorer';
import { LockService } from './lock.service';
import { validateModuleOptions } from './options/validate-options';

/**
 * Distributed locks for Nest: `LockService` and `@Exclusive()`, over one or more independent Redis
 * instances (Redlock). Global by default (`isGlobal: false` to opt out).
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
    {
      provide: DISTRIBUTED_LOCK_OPTIONS,
      inject: [RAW_OPTIONS_TOKEN],
      useFactory: (raw: DistributedLockModuleOptions) => validateModuleOptions(raw),
    },
    LockService,
    ExclusiveExplorer,
  ],
  exports: [LockService],
})
export class DistributedLockModule extends ConfigurableDistributedLockModule {}
