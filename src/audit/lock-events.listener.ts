import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { LockService } from '@app/distributed-lock';
import { filter, type Subscription } from 'rxjs';
import { AuditService } from './audit.service';

/**
 * Counts this replica's lock outcomes from `LockService.events`: acquisitions, `busy` answers,
 * skipped `@Exclusive()` runs by reason (`tick-claimed`, `busy`, `shutdown`, `unavailable`) and lost
 * locks by reason. The same pattern feeds a metrics system or an alert: subscribe once, keep the
 * handler cheap, and never let a failed write reach the lock code.
 */
@Injectable()
export class LockEventsListener implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(LockEventsListener.name);
  private subscription?: Subscription;

  constructor(
    private readonly locks: LockService,
    private readonly audit: AuditService,
  ) {}

  /** Subscribes before the scheduler starts (`onApplicationBootstrap`), so no run goes uncounted. */
  onModuleInit(): void {
    this.subscription = this.locks.events
      // Extensions are frequent and say nothing about who ran what.
      .pipe(filter((event) => event.type !== 'extended'))
      .subscribe((event) => {
        this.audit.recordLockEvent(event).catch((error: unknown) => {
          this.logger.warn(`could not record a ${event.type} lock event: ${String(error)}`);
        });
      });
  }

  onApplicationShutdown(): void {
    this.subscription?.unsubscribe();
  }
}
