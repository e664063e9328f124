/**
 * One replica in a child process: a real Nest app with @nestjs/schedule and the lock module. Its clock
 * can be skewed (SKEW_MS) by patching Date.now before anything reads it; the cron library reads time
 * through luxon, which calls Date.now. Every job records HINCRBY execs:<job> <tick second> on the
 * records Redis, so the test can count runs per scheduled tick. MODE: 'cron' (every-second jobs), 'many' (20 of them),
 * 'tz' (one 02:30 Europe/Berlin job; run it with different TZ env), 'dynamic' (a cron job added
 * at runtime through ExclusiveScheduler), 'http' (an @Exclusive route
 * POST /orders/:id/pay on HTTP_PORT), anything else (one long job). Locks are on the Redis
 * instances of REDIS_URLS, or with BACKEND=postgres on the PostgreSQL server of PG_URL.
 */
const skew = Number(process.env.SKEW_MS ?? 0);
if (skew !== 0) {
  const real = Date.now.bind(Date);
  Date.now = () => real() + skew;
}

import 'reflect-metadata';
import {
  Controller,
  Injectable,
  Module,
  Param,
  Post,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Cron, ScheduleModule, SchedulerRegistry, Timeout } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { Redis } from 'ioredis';
import {
  DistributedLockModule,
  Exclusive,
  ExclusiveScheduler,
  type DistributedLockModuleOptions,
} from '@app/distributed-lock';
import { postgresBackend } from '@app/distributed-lock/postgres';

const records = new Redis(process.env.RECORDS_URL!, { maxRetriesPerRequest: 1 });
const replica = process.env.REPLICA ?? String(process.pid);
const JOB_MS = Number(process.env.JOB_MS ?? 10);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function record(job: string): Promise<void> {
  // The second this run belongs to: the handler fires at most a few ms early (cron's timers), and
  // may start late when the machine is busy (a retried vote, a slow pool): up to 900 ms still counts.
  const tick = Math.floor((Date.now() + 100) / 1000);
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

/** MODE 'tz': a nightly job in an explicit zone, for replicas whose processes run in different TZs. */
@Injectable()
class ZonedJob {
  @Cron('0 30 2 * * *', { timeZone: 'Europe/Berlin' })
  @Exclusive()
  nightly() {
    return record('tz');
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

/**
 * MODE 'dynamic': an every-second cron job added at runtime through ExclusiveScheduler (recorded as
 * `dynamic`), and the same job added straight to SchedulerRegistry without a lock (`dynamic-unlocked`),
 * to show the lock is what makes it run once.
 */
@Injectable()
class DynamicJobs implements OnModuleInit {
  constructor(
    private readonly jobs: ExclusiveScheduler,
    private readonly registry: SchedulerRegistry,
  ) {}
  onModuleInit() {
    this.jobs.addCronJob('dynamic', '* * * * * *', () => record('dynamic'));
    const unlocked = CronJob.from({
      cronTime: '* * * * * *',
      onTick: () => void record('dynamic-unlocked'),
      start: true,
    });
    this.registry.addCronJob('dynamic-unlocked', unlocked);
  }
}

@Injectable()
class Closer implements OnApplicationShutdown {
  async onApplicationShutdown() {
    await records.quit();
  }
}

/**
 * MODE 'many': MANY_JOBS (default 20) independent every-second jobs, `@Cron` + `@Exclusive()` with no
 * options, recorded as `many<i>`. Every tick is one race per job between the replicas, so a test sees
 * enough simultaneous claims to catch split votes.
 */
@Injectable()
class ManyJobs {}
for (let i = 0; i < Number(process.env.MANY_JOBS ?? 20); i += 1) {
  const name = `job${i}`;
  Object.defineProperty(ManyJobs.prototype, name, {
    value: function () {
      return record(`many${i}`);
    },
    writable: true,
    configurable: true,
  });
  const descriptor = Object.getOwnPropertyDescriptor(ManyJobs.prototype, name)!;
  Exclusive()(ManyJobs.prototype, name, descriptor);
  Cron('* * * * * *')(ManyJobs.prototype, name, descriptor);
  Object.defineProperty(ManyJobs.prototype, name, descriptor);
}

/** MODE 'http': one paying request per order at a time across replicas; a duplicate gets 409. */
@Controller('orders')
class OrdersController {
  @Post(':id/pay')
  @Exclusive({ key: (id: string) => `order:${id}` })
  async pay(@Param('id') id: string): Promise<{ paid: string; by: string }> {
    await records.rpush(`pay:${id}`, replica);
    await sleep(JOB_MS);
    return { paid: id, by: replica };
  }
}

const mode = process.env.MODE ?? 'cron';

/** Where the locks live: the Redis instances of REDIS_URLS, or PostgreSQL (BACKEND=postgres, PG_URL). */
const store: DistributedLockModuleOptions =
  process.env.BACKEND === 'postgres'
    ? { backend: postgresBackend({ connectionString: process.env.PG_URL! }) }
    : {
        connections: process.env.REDIS_URLS!.split(','),
        keyPrefix: process.env.KEY_PREFIX ?? 'lock:',
      };

@Module({
  imports: [
    ScheduleModule.forRoot(),
    DistributedLockModule.forRoot({ ...store, ttl: 2_000, logger: false }),
  ],
  controllers: mode === 'http' ? [OrdersController] : [],
  providers: [
    ...(mode === 'http'
      ? []
      : [
          mode === 'cron'
            ? CronJobs
            : mode === 'many'
              ? ManyJobs
              : mode === 'tz'
                ? ZonedJob
                : mode === 'dynamic'
                  ? DynamicJobs
                  : LongJob,
        ]),
    Closer,
  ],
})
class ReplicaModule {}

async function main(): Promise<void> {
  if (mode === 'http') {
    const app = await NestFactory.create(ReplicaModule, { logger: ['error', 'warn'] });
    app.enableShutdownHooks();
    await app.listen(Number(process.env.HTTP_PORT), '127.0.0.1');
    process.send?.('ready');
    return;
  }
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
