/**
 * A child process for test/otel-absent.e2e-spec.ts: a Nest app with the lock module (OpenTelemetry
 * on, the default) that takes locks with LockService, runs an @Exclusive method and an @Exclusive
 * @Cron job, then reports what happened over IPC. Run with and without hide-opentelemetry.ts.
 */
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { createRequire } from 'node:module';
import { DistributedLockModule, Exclusive, LockService } from '@app/distributed-lock';
import { LockEvents } from '@app/distributed-lock/events/lock-events';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

@Injectable()
class Jobs {
  cronRuns = 0;
  @Exclusive({ key: (id: string) => `invoice:${id}` })
  async pay(id: string): Promise<string> {
    await sleep(1);
    return `paid ${id}`;
  }

  @Cron('* * * * * *')
  @Exclusive()
  tick() {
    this.cronRuns += 1;
  }
}

@Module({
  imports: [
    ScheduleModule.forRoot(),
    DistributedLockModule.forRoot({
      connections: process.env.REDIS_URLS!.split(','),
      keyPrefix: `absent:${process.pid}:`,
      logger: false,
    }),
  ],
  providers: [Jobs],
})
class AppModule {}

/** What the spec checks. */
export interface AbsentReport {
  apiResolvable: boolean;
  listening: boolean;
  fencingTokens: number[];
  busyWhileHeld: boolean;
  runExclusive: string;
  exclusive: string;
  cronRuns: number;
}

async function main(): Promise<AbsentReport> {
  let apiResolvable = true;
  try {
    createRequire(__filename).resolve('@opentelemetry/api');
  } catch {
    apiResolvable = false;
  }
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  try {
    const locks = app.get(LockService);
    const jobs = app.get(Jobs);
    const first = await locks.acquire('order:1');
    const busyWhileHeld = (await locks.tryAcquire('order:1')) === null;
    await first.release();
    const second = await locks.acquire('order:1');
    await second.release();
    const runExclusive = await locks.runExclusive('order:2', () => 'ran');
    const exclusive = await jobs.pay('7');
    for (let i = 0; i < 60 && jobs.cronRuns === 0; i += 1) await sleep(50);
    return {
      apiResolvable,
      // With logging off, only the OpenTelemetry listener would subscribe to the event hub.
      listening: app.get(LockEvents, { strict: false }).observed,
      fencingTokens: [first.fencingToken, second.fencingToken],
      busyWhileHeld,
      runExclusive,
      exclusive,
      cronRuns: jobs.cronRuns,
    };
  } finally {
    await app.close();
  }
}

main().then(
  (report) => process.send!({ report }, () => process.disconnect()),
  (error: unknown) => {
    process.send!({
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    process.exitCode = 1;
    process.disconnect();
  },
);
