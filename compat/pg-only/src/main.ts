/**
 * Nest 11 + pg 8.7 (the floor of the peer range) with no ioredis installed: the main entry and /postgres load, LockService and
 * @Exclusive run on a real PostgreSQL, an unreachable database fails closed as LockUnavailableError,
 * and `connections` (Redis) without ioredis fails bootstrap with a DistributedLockConfigError naming it.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  DistributedLockConfigError,
  DistributedLockModule,
  LockService,
  LockUnavailableError,
} from 'nestjs-distributed-lock';
import { postgresBackend } from 'nestjs-distributed-lock/postgres';
import { check, env } from './shared/check';
import { lockSmoke } from './shared/lock-smoke';

@Module({
  imports: [
    DistributedLockModule.forRoot({
      backend: postgresBackend({ connectionString: 'postgres://nobody@127.0.0.1:1/none' }),
      logger: false,
    }),
  ],
})
class UnreachableApp {}

@Module({
  imports: [DistributedLockModule.forRoot({ connections: ['redis://127.0.0.1:1'], logger: false })],
})
class RedisApp {}

async function main(): Promise<void> {
  const connectionString = env('DATABASE_URL');
  console.log(
    await lockSmoke({ backend: postgresBackend({ connectionString }) }, `pg-only:${process.pid}`),
  );

  const app = await NestFactory.createApplicationContext(UnreachableApp, { logger: false });
  const outcome = await app
    .get(LockService)
    .tryAcquire('job')
    .catch((e: unknown) => e);
  await app.close();
  check(
    outcome instanceof LockUnavailableError,
    `unreachable database: expected LockUnavailableError, got ${String(outcome)}`,
  );

  const failed = await NestFactory.createApplicationContext(RedisApp, {
    logger: false,
    abortOnError: false,
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  check(
    failed instanceof DistributedLockConfigError && /ioredis/.test(failed.message),
    `connections without ioredis: expected a DistributedLockConfigError naming ioredis, got ${String(failed)}`,
  );
  console.log(
    'no ioredis: unreachable database = LockUnavailableError; connections without ioredis = DistributedLockConfigError naming ioredis',
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
