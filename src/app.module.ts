import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { DistributedLockModule } from '@app/distributed-lock';
import { AuditService } from './audit/audit.service';
import { OrdersController } from './orders/orders.controller';
import { PaymentsService } from './orders/payments.service';
import { TasksService } from './tasks/tasks.service';

/** Redis deployments from `REDIS_URLS` (comma-separated), one independent instance each. */
export function redisUrls(): string[] {
  return (process.env.REDIS_URLS ?? 'redis://127.0.0.1:6379')
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
}

@Module({
  imports: [
    ScheduleModule.forRoot(),
    DistributedLockModule.forRoot({ connections: redisUrls(), ttl: 10_000 }),
  ],
  controllers: [OrdersController],
  providers: [AuditService, TasksService, PaymentsService],
})
export class AppModule {}
