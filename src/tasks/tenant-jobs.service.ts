import { Injectable, type OnModuleInit } from '@nestjs/common';
import { ExclusiveScheduler } from '@app/distributed-lock';
import { AuditService } from '../audit/audit.service';

/**
 * A job added at runtime, as per-tenant schedules read from a database would be: registered in
 * SchedulerRegistry through ExclusiveScheduler, so it runs once per tick across every replica
 * (a plain `SchedulerRegistry.addCronJob` would run it on each of them).
 */
@Injectable()
export class TenantJobsService implements OnModuleInit {
  constructor(
    private readonly jobs: ExclusiveScheduler,
    private readonly audit: AuditService,
  ) {}

  onModuleInit(): void {
    // In a real app: for (const tenant of await this.tenants.all()) ...
    const tenant = { id: 'acme', cron: '*/10 * * * * *', timeZone: 'Europe/Berlin' };
    this.jobs.addCronJob(
      `tenant:${tenant.id}:digest`,
      tenant.cron,
      () => this.audit.recordRun(`tenant:${tenant.id}:digest`, Math.round(Date.now() / 1000)),
      { timeZone: tenant.timeZone },
    );
  }
}
