import type { Provider } from '@nestjs/common';
import { LockBackend } from './backend/lock-backend.interface';
import { DISTRIBUTED_LOCK_OPTIONS } from './distributed-lock.constants';
import { RAW_OPTIONS_TOKEN } from './distributed-lock.module-definition';
import { LockEvents } from './events/lock-events';
import type { DistributedLockModuleOptions } from './interfaces/module-options.interface';
import type { ResolvedLockOptions } from './options/resolved-options';
import { validateModuleOptions } from './options/validate-options';
import { attachOpenTelemetry } from './otel/otel.listener';
import { redisBackend } from './redis/redis-backend.factory';

/**
 * The module's providers that decide things once: validated options, the backend (the user's
 * `backend`, else Redis), and the event hub with its listeners: the logger, then OpenTelemetry.
 * @internal
 */
export const distributedLockProviders: Provider[] = [
  {
    provide: DISTRIBUTED_LOCK_OPTIONS,
    inject: [RAW_OPTIONS_TOKEN],
    useFactory: (raw: DistributedLockModuleOptions) => validateModuleOptions(raw),
  },
  {
    provide: LockBackend,
    inject: [DISTRIBUTED_LOCK_OPTIONS],
    // `forRoot({ connections })` is the shorthand for `backend: redisBackend({ connections })`.
    useFactory: (options: ResolvedLockOptions): LockBackend =>
      options.backend ??
      redisBackend({
        connections: options.connections,
        clients: options.clients,
        keyPrefix: options.keyPrefix,
        driftFactor: options.driftFactor,
        commandTimeout: options.commandTimeout,
        logger: options.logger ?? false,
      }),
  },
  {
    provide: LockEvents,
    inject: [DISTRIBUTED_LOCK_OPTIONS],
    useFactory: (options: ResolvedLockOptions) => {
      const events = new LockEvents();
      if (options.logger) events.attachLogger(options.logger);
      // Optional peer: records only when @opentelemetry/api resolves; absent, nothing changes.
      if (options.openTelemetry) attachOpenTelemetry(events, options.metricName);
      return events;
    },
  },
];
