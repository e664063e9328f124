/**
 * One replica of a Nest 12 app with two `@Exclusive()` `@Cron` jobs, run as a child process by
 * cron.scenario.ts. Every run records `HINCRBY <run>:execs:<job> <tick second> 1` on the first
 * Redis, so the scenario can count the runs of each scheduled tick across all replicas.
 */
import 'reflect-metadata';
import { Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import { Redis } from 'ioredis';
import { DistributedLockModule, Exclusive } from 'nestjs-distributed-lock';
import { env, sleep } from './support.js';

const connections = env('REDIS_URLS').split(',');
const run = env('RUN');
const replica = env('REPLICA');
const records = new Redis(connections[0], { maxRetriesPerRequest: 1 });

async function record(job: string): Promise<void> {
  const tick = Math.round(Date.now() / 1000);
  await sleep(20);
  await records
    .multi()
    .hincrby(`${run}:execs:${job}`, String(tick), 1)
    .rpush(`${run}:who:${job}:${tick}`, replica)
    .exec();
}

@Injectable()
class Jobs implements OnApplicationShutdown {
  /** `@Exclusive()` below `@Cron`: it wraps the method before the schedule metadata is set. */
  @Cron('* * * * * *')
  @Exclusive()
  below(): Promise<void> {
    return record('below');
  }

  /** `@Exclusive()` above `@Cron`: the wrapper must carry the schedule metadata over. */
  @Exclusive()
  @Cron('* * * * * *')
  above(): Promise<void> {
    return record('above');
  }

  async onApplicationShutdown(): Promise<void> {
    await records.quit();
  }
}

@Module({
  imports: [
    ScheduleModule.forRoot(),
    DistributedLockModule.forRoot({ connections, ttl: 2_000, logger: false }),
  ],
  providers: [Jobs],
})
class ReplicaModule {}

const app = await NestFactory.createApplicationContext(ReplicaModule, {
  logger: ['error', 'warn'],
});
app.enableShutdownHooks();
process.send?.('ready');
