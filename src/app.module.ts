import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { DistributedLockModule, type DistributedLockModuleOptions } from '@app/distributed-lock';
import { etcdBackend } from '@app/distributed-lock/etcd';
import { postgresBackend } from '@app/distributed-lock/postgres';
import { DistributedLockHealthModule } from '@app/distributed-lock/terminus';
import { AuditService } from './audit/audit.service';
import { LockEventsListener } from './audit/lock-events.listener';
import { HealthController } from './health/health.controller';
import { OrdersController } from './orders/orders.controller';
import { OutboxRelayService } from './outbox/outbox-relay.service';
import { PaymentsService } from './orders/payments.service';
import { TasksService } from './tasks/tasks.service';
import { TenantJobsService } from './tasks/tenant-jobs.service';

/** Redis deployments from `REDIS_URLS` (comma-separated), one independent instance each. */
export function redisUrls(): string[] {
  return (process.env.REDIS_URLS ?? 'redis://127.0.0.1:6379')
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
}

/**
 * The lock module's options from the environment: `LOCK_BACKEND=postgres` with `DATABASE_URL` locks
 * in PostgreSQL, `LOCK_BACKEND=etcd` with `ETCD_HOSTS` (comma-separated) in etcd; otherwise (`LOCK_BACKEND` unset or `redis`) in the Redis instances of
 * `REDIS_URLS`. Read when the application is created, not when this file is imported.
 */
export function lockOptions(): DistributedLockModuleOptions {
  return { ...storeOptions(), identity: identity() };
}

/** Who this replica is in `LockAdmin.list()` and the CLI: `replica-<REPLICA>:<pid>` when named. */
function identity(): string | undefined {
  return process.env.REPLICA ? `replica-${process.env.REPLICA}:${process.pid}` : undefined;
}

function storeOptions(): DistributedLockModuleOptions {
  const backend = process.env.LOCK_BACKEND ?? 'redis';
  if (backend === 'postgres') {
    const connectionString = process.env.DATABASE_URL;
    if (!connectionString) throw new Error('LOCK_BACKEND=postgres needs DATABASE_URL');
    return { backend: postgresBackend({ connectionString }), ttl: 10_000 };
  }
  if (backend === 'etcd') {
    const hosts = (process.env.ETCD_HOSTS ?? '').split(',').filter(Boolean);
    if (hosts.length === 0) throw new Error('LOCK_BACKEND=etcd needs ETCD_HOSTS');
    return { backend: etcdBackend({ hosts }), ttl: 10_000 };
  }
  if (backend !== 'redis') {
    throw new Error(`LOCK_BACKEND must be redis, postgres or etcd, not ${JSON.stringify(backend)}`);
  }
  return { connections: redisUrls(), ttl: 10_000 };
}

@Module({
  imports: [
    ScheduleModule.forRoot(),
    DistributedLockModule.forRootAsync({ useFactory: lockOptions }),
    TerminusModule,
    DistributedLockHealthModule,
  ],
  controllers: [OrdersController, HealthController],
  providers: [
    AuditService,
    LockEventsListener,
    TasksService,
    TenantJobsService,
    PaymentsService,
    OutboxRelayService,
  ],
})
export class AppModule {}
