import { Module, type DynamicModule } from '@nestjs/common';
import { DistributedLockModule } from '../distributed-lock.module';
import type { DistributedLockModuleOptions } from '../interfaces/module-options.interface';
import { InMemoryLockBackend } from './in-memory.backend';
import { LockTestingController } from './lock-testing.controller';

/**
 * Options of `DistributedLockTestingModule.forRoot`: the module options without the store
 * (`connections`, `clients`, `backend`). `logger` defaults to `false` here.
 */
export type DistributedLockTestingOptions = Omit<
  DistributedLockModuleOptions,
  'connections' | 'clients' | 'backend'
>;

/**
 * `DistributedLockModule` for your unit tests: the real `LockService` and `@Exclusive()` over an
 * in-memory store instead of Redis, with the same errors (busy vs unavailable vs lost), strictly
 * increasing fencing tokens, TTL expiry and auto-extension, also under `jest.useFakeTimers()`.
 * Global; import it instead of `DistributedLockModule.forRoot(...)` and drive the store with the
 * injectable {@link LockTestingController}. Each `forRoot()` call creates its own store.
 *
 * @example
 * ```ts
 * const moduleRef = await Test.createTestingModule({
 *   imports: [DistributedLockTestingModule.forRoot()],
 *   controllers: [OrdersController],
 *   providers: [PaymentsService],
 * }).compile();
 * await moduleRef.init();
 * moduleRef.get(LockTestingController).holdElsewhere('order:42');
 * ```
 */
@Module({})
export class DistributedLockTestingModule {
  /**
   * The testing module with its own in-memory store.
   * @param options module options (`ttl`, `retry`, `extendThreshold`, `shutdownTimeout`, `logger`, ...)
   */
  static forRoot(options: DistributedLockTestingOptions = {}): DynamicModule {
    const store = new InMemoryLockBackend();
    return {
      module: DistributedLockTestingModule,
      global: true,
      imports: [DistributedLockModule.forRoot({ logger: false, ...options, backend: store })],
      providers: [{ provide: InMemoryLockBackend, useValue: store }, LockTestingController],
      exports: [LockTestingController],
    };
  }
}
