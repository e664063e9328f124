import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { DistributedLockModule, type DistributedLockModuleOptions } from 'nestjs-distributed-lock';
import {
  DistributedLockHealthIndicator,
  DistributedLockHealthModule,
} from 'nestjs-distributed-lock/terminus';
import { check } from './check';

@Module({})
class HealthSmokeModule {
  static register(options: DistributedLockModuleOptions): DynamicModule {
    return {
      module: HealthSmokeModule,
      imports: [
        DistributedLockModule.forRoot({ ...options, logger: false }),
        TerminusModule,
        DistributedLockHealthModule,
      ],
    };
  }
}

/**
 * nestjs-distributed-lock/terminus with this @nestjs/terminus: `ok` on the running store, and an
 * error result (HealthCheckService throws its 503 exception) for a store that cannot be reached.
 */
export async function healthSmoke(
  options: DistributedLockModuleOptions,
  down: DistributedLockModuleOptions,
): Promise<string> {
  const probe = async (opts: DistributedLockModuleOptions): Promise<unknown> => {
    const app = await NestFactory.createApplicationContext(HealthSmokeModule.register(opts), {
      logger: false,
    });
    try {
      const indicator = app.get(DistributedLockHealthIndicator);
      return await app
        .get(HealthCheckService)
        .check([() => indicator.isHealthy()])
        .then(
          (result) => result,
          (error: unknown) => (error as { getResponse?: () => unknown }).getResponse?.() ?? error,
        );
    } finally {
      await app.close();
    }
  };
  const up = (await probe(options)) as { status?: string };
  check(up.status === 'ok', `health of the running store: ${JSON.stringify(up)}`);
  const failed = (await probe(down)) as { status?: string };
  check(
    failed.status === 'error',
    `health of an unreachable store: expected status error (503), got ${JSON.stringify(failed)}`,
  );
  return 'terminus health: ok on the running store, error (503) on an unreachable one';
}
