import { Injectable } from '@nestjs/common';
import * as terminus from '@nestjs/terminus';
import { Messages } from '../distributed-lock.messages';
import { LockManager } from '../lock-manager';

/** What `isHealthy` reports under its key: Terminus' `status` and the backend's vote count. */
export interface DistributedLockHealthDetails {
  /** `'up'` while a majority of the backend's instances answer. */
  status: 'up' | 'down';
  /** Independent instances (Redis deployments, database servers) the lock votes over. */
  instances: number;
  /** Instances that answered the probe just now. */
  up: number;
  /** Instances that must answer for a lock operation to succeed (a majority). */
  quorum: number;
  /**
   * With named `stores` configured: every store's own `{ status, instances, up, quorum }` by name
   * (`default` included); the indicator is down when any of them is. The top-level counts stay the
   * default store's.
   */
  stores?: Record<string, Omit<DistributedLockHealthDetails, 'stores'>>;
}

/**
 * The result of {@link DistributedLockHealthIndicator.isHealthy}: a Terminus `HealthIndicatorResult`
 * with precise details, e.g. `{ distributedLock: { status: 'up', instances: 3, up: 3, quorum: 2 } }`.
 */
export type DistributedLockHealthResult<Key extends string = string> = Record<
  Key,
  DistributedLockHealthDetails
>;

/** What Terminus 11+ has (`HealthIndicatorService`) and Terminus 10 has instead (`HealthCheckError`). */
interface TerminusApi {
  HealthIndicatorService?: new () => {
    check(key: string): {
      up(data: object): Record<string, unknown>;
      down(data: object): Record<string, unknown>;
    };
  };
  HealthCheckError?: new (message: string, causes: unknown) => Error;
}

/**
 * Terminus health indicator of the lock backend: up while a majority of its instances answer (the
 * condition for any lock to be granted), down otherwise, so a `@HealthCheck()` route answers 503.
 * Probes every instance on each call (on Redis a PING bounded by `commandTimeout`) and never
 * throws for an outage. Provided by {@link DistributedLockHealthModule}.
 *
 * @example
 * ```ts
 * @Controller('health')
 * export class HealthController {
 *   constructor(
 *     private readonly health: HealthCheckService,
 *     private readonly locks: DistributedLockHealthIndicator,
 *   ) {}
 *
 *   @Get()
 *   @HealthCheck()
 *   check() {
 *     return this.health.check([() => this.locks.isHealthy()]);
 *   }
 * }
 * ```
 */
@Injectable()
export class DistributedLockHealthIndicator {
  private readonly terminus = terminus as unknown as TerminusApi;

  /** @internal */
  constructor(private readonly manager: LockManager) {}

  /**
   * Probes the backend.
   * @param key the key of this indicator in the health check's `info` / `error` / `details`
   * @returns `{ [key]: { status: 'up', instances, up, quorum } }` while a majority answers; otherwise
   * the same with `status: 'down'` (Terminus 11+), or a thrown `HealthCheckError` carrying it
   * (Terminus 10): either way `HealthCheckService.check` answers 503.
   */
  async isHealthy<Key extends string = 'distributedLock'>(
    key: Key = 'distributedLock' as Key,
  ): Promise<DistributedLockHealthResult<Key>> {
    const names = [...this.manager.stores.keys()];
    const probes = await Promise.all(names.map((name) => this.manager.backendOf(name).health()));
    const { instances, up, quorum } = probes[0];
    let details: Omit<DistributedLockHealthDetails, 'status'> = { instances, up, quorum };
    const healthy = probes.every((p) => p.up >= p.quorum);
    if (names.length > 1) {
      const stores = Object.fromEntries(
        names.map((name, i) => {
          const p = probes[i];
          const status: 'up' | 'down' = p.up >= p.quorum ? 'up' : 'down';
          return [name, { status, instances: p.instances, up: p.up, quorum: p.quorum }];
        }),
      );
      details = { ...details, stores };
    }
    const { HealthIndicatorService, HealthCheckError } = this.terminus;
    if (HealthIndicatorService) {
      const session = new HealthIndicatorService().check(key);
      return (
        healthy ? session.up(details) : session.down(details)
      ) as DistributedLockHealthResult<Key>;
    }
    const result = {
      [key]: { status: healthy ? 'up' : 'down', ...details },
    } as DistributedLockHealthResult<Key>;
    if (healthy || !HealthCheckError) return result;
    // Terminus 10 counts only thrown HealthCheckErrors as failures.
    throw new HealthCheckError(Messages.healthDown(up, instances, quorum), result);
  }
}
