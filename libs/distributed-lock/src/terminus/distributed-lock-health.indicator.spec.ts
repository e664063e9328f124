import type { BackendHealth } from '../backend/lock-backend.interface';
import type { LockManager } from '../lock-manager';
import { DistributedLockHealthIndicator } from './distributed-lock-health.indicator';

// The surface of @nestjs/terminus 10: no HealthIndicatorService; failures are thrown HealthCheckErrors.
jest.mock('@nestjs/terminus', () => {
  class HealthCheckError extends Error {
    readonly isHealthCheckError = true;
    constructor(
      message: string,
      readonly causes: unknown,
    ) {
      super(message);
    }
  }
  return { HealthCheckError };
});

const indicator = (health: BackendHealth) => {
  const backend = { health: () => Promise.resolve(health) };
  return new DistributedLockHealthIndicator({
    stores: new Map([['default', backend]]),
    backendOf: () => backend,
  } as unknown as LockManager);
};

describe('DistributedLockHealthIndicator on Terminus 10', () => {
  it('returns the up result while a majority answers', async () => {
    await expect(indicator({ instances: 3, up: 2, quorum: 2 }).isHealthy()).resolves.toEqual({
      distributedLock: { status: 'up', instances: 3, up: 2, quorum: 2 },
    });
  });

  it('throws a HealthCheckError carrying the down result (what Terminus 10 counts as a failure)', async () => {
    const error = await indicator({ instances: 3, up: 1, quorum: 2 })
      .isHealthy('locks')
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      isHealthCheckError: true,
      message: 'only 1 of 3 lock instances answered (a majority of 2 is required)',
      causes: { locks: { status: 'down', instances: 3, up: 1, quorum: 2 } },
    });
  });
});
