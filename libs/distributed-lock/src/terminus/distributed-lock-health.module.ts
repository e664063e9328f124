import { Module } from '@nestjs/common';
import { DistributedLockHealthIndicator } from './distributed-lock-health.indicator';

/**
 * Provides {@link DistributedLockHealthIndicator} for a Terminus health check. Needs
 * `DistributedLockModule` in the application; it is global by default. With `isGlobal: false`, list
 * `DistributedLockHealthIndicator` among the providers of the module that imports
 * `DistributedLockModule` instead.
 *
 * @example
 * ```ts
 * @Module({
 *   imports: [
 *     DistributedLockModule.forRoot({ connections: ['redis://a:6379', 'redis://b:6379', 'redis://c:6379'] }),
 *     TerminusModule,
 *     DistributedLockHealthModule,
 *   ],
 *   controllers: [HealthController],
 * })
 * export class AppModule {}
 * ```
 */
@Module({
  providers: [DistributedLockHealthIndicator],
  exports: [DistributedLockHealthIndicator],
})
export class DistributedLockHealthModule {}
