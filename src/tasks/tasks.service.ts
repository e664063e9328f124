import { Injectable, Logger } from '@nestjs/common';
import { Cron, CronExpression, Interval, Timeout } from '@nestjs/schedule';
import { Exclusive } from '@app/distributed-lock';
import { AuditService } from '../audit/audit.service';

/** Scheduled jobs that must run once across all replicas. */
@Injectable()
export class TasksService {
  private readonly logger = new Logger(TasksService.name);

  constructor(private readonly audit: AuditService) {}

  /** Once per second across the fleet, whatever the replicas' clock skew: each tick is claimed. */
  @Cron(CronExpression.EVERY_SECOND)
  @Exclusive()
  async report(): Promise<void> {
    await this.audit.recordRun('report', Math.round(Date.now() / 1000));
  }

  /** Intervals have no shared schedule: lockAtLeastFor (below the period, above the skew) does the job. */
  @Interval(5_000)
  @Exclusive({ lockAtLeastFor: 4_000 })
  async cleanup(): Promise<void> {
    await this.audit.bump('cleanups');
  }

  /** One replica warms the shared cache at startup; the others skip. */
  @Timeout(1_000)
  @Exclusive({ lockAtLeastFor: 60_000 })
  async warmCache(): Promise<void> {
    await this.audit.bump('warmups');
    this.logger.log('cache warmed');
  }
}
