import { Injectable, Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Cron, ScheduleModule } from '@nestjs/schedule';
import {
  DistributedLockModule,
  Exclusive,
  type DistributedLockModuleOptions,
} from 'nestjs-distributed-lock';
import { until } from './check';

@Injectable()
class Jobs {
  above = 0;
  below = 0;

  /** `@Exclusive()` above `@Cron`: the wrapper must carry the schedule metadata over. */
  @Exclusive()
  @Cron('* * * * * *')
  tickAbove(): void {
    this.above += 1;
  }

  /** `@Exclusive()` below `@Cron`. */
  @Cron('* * * * * *')
  @Exclusive()
  tickBelow(): void {
    this.below += 1;
  }
}

@Module({})
class CronSmokeModule {
  static register(options: DistributedLockModuleOptions): DynamicModule {
    return {
      module: CronSmokeModule,
      imports: [
        ScheduleModule.forRoot(),
        DistributedLockModule.forRoot({ ...options, ttl: 2_000, logger: false }),
      ],
      providers: [Jobs],
    };
  }
}

/** `@Exclusive` above and below `@Cron` with this @nestjs/schedule: both jobs stay scheduled and run. */
export async function cronSmoke(options: DistributedLockModuleOptions): Promise<string> {
  const app = await NestFactory.createApplicationContext(CronSmokeModule.register(options), {
    logger: ['error', 'warn'],
  });
  await app.init();
  try {
    const jobs = app.get(Jobs);
    await until(
      () => jobs.above >= 2 && jobs.below >= 2,
      15_000,
      `@Cron jobs did not run twice within 15 s (above ${jobs.above}, below ${jobs.below})`,
    );
    return `@Exclusive above and below @Cron both ran (${jobs.above}, ${jobs.below} ticks)`;
  } finally {
    await app.close();
  }
}
