/**
 * One replica in a child process: a real Nest app with @nestjs/schedule and the lock module. Its clock
 * can be skewed (SKEW_MS) by patching Date.now before anything reads it; the cron library reads time
 * through luxon, which calls Date.now. Every job records HINCRBY execs:<job> <tick second> on the
 * records Redis, so the test can count runs per scheduled tick.
 */
const skew = Number(process.env.SKEW_MS ?? 0);
if (skew !== 0) {
  const real = Date.now.bind(Date);
  Date.now = () => real() + skew;
}

import 'reflect-metadata';
import { Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Cron, ScheduleModule, Timeout } from '@nestjs/schedule';
import { Redis } from 'ioredis';
import { DistributedLockModule, Exclusive } from '@app/distributed-lock';

const records = new Redis(process.env.RECORDS_URL!, { maxRetriesPerRequest: 1 });
const replica = process.env.REPLICA ?? String(process.pid);
const JOB_MS = Number(process.env.JOB_MS ?? 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function record(job: string): Promise<void> {
  const tick = Math.round(Date.now() / 1000);
  await sleep(JOB_MS);
  await records
    .multi()
    .hincrby(`execs:${job}`, String(tick), 1)
    .rpush(`who:${job}:${tick}`, replica)
    .exec();
}

@Injectable()
class CronJobs {
  /** No options at all: per-tick claims. */
  @Cron('* * * * * *')
  @Exclusive()
  defaults() {
    return record('defaults');
  }

  /** Plain job lock, skew absorbed by lockAtLeastFor. */
  @Cron('* * * * * *')
  @Exclusive({ claimTick: false, lockAtLeastFor: 800 })
  atLeast() {
    return record('atLeast');
  }

  /** Neither mechanism: expected to run some ticks more than once under skew. */
  @Cron('* * * * * *')
  @Exclusive({ claimTick: false })
  plain() {
    return record('plain');
  }
}

@Injectable()
class LongJob {
  /** Starts once, takes LONG_JOB_MS: used to SIGTERM a replica mid-job. */
  @Timeout(100)
  @Exclusive({ key: 'long-job' })
  async run() {
    await records.rpush('long-job', `started:${replica}`);
    await sleep(Number(process.env.LONG_JOB_MS ?? 1_500));
    await records.rpush('long-job', `done:${replica}`);
  }
}

@Injectable()
class Closer implements OnApplicationShutdown {
  async onApplicationShutdown() {
    await records.quit();
  }
}

const mode = process.env.MODE ?? 'cron';

@Module({
  imports: [
    ScheduleModule.forRoot(),
    DistributedLockModule.forRoot({
      connections: process.env.REDIS_URLS!.split(','),
      keyPrefix: process.env.KEY_PREFIX ?? 'lock:',
      ttl: 2_000,
      logger: false,
    }),
  ],
  providers: [mode === 'cron' ? CronJobs : LongJob, Closer],
})
class ReplicaModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(ReplicaModule, {
    logger: ['error', 'warn'],
  });
  app.enableShutdownHooks();
  process.send?.('ready');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
