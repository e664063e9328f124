import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthCheckResult } from '@nestjs/terminus';
import { DistributedLockHealthIndicator } from '@app/distributed-lock/terminus';

/**
 * `GET /health`: 200 while a majority of the lock backend's instances answer, 503 otherwise, with
 * `{ status, instances, up, quorum }` under `distributedLock`. A readiness probe: restarting this
 * replica does not bring the lock store back.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly locks: DistributedLockHealthIndicator,
  ) {}

  /** Probes every lock instance (on Redis a PING bounded by the module's `commandTimeout`). */
  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.locks.isHealthy()]);
  }
}
