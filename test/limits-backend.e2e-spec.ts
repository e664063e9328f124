/**
 * A backend written before concurrency limits (no `limits`, `acquire(keys, ttl)` only) stays valid,
 * and the module refuses `limit` > 1 for its store clearly, before calling it.
 */
import { Controller, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  DistributedLockConfigError,
  DistributedLockModule,
  Exclusive,
  InvalidLockArgumentError,
  LockService,
  type BackendLock,
  type LockBackend,
} from '@app/distributed-lock';
import { InMemoryLockBackend } from '@app/distributed-lock/testing/in-memory.backend';

/** A third-party style backend over the in-memory store, without limit support. */
function legacyBackend(): { backend: LockBackend; acquired: string[][] } {
  const store = new InMemoryLockBackend();
  const acquired: string[][] = [];
  const backend: LockBackend = {
    name: 'legacy',
    connect: (c) => store.connect(c),
    acquire: (keys: string[], ttl: number): Promise<BackendLock> => {
      acquired.push(keys);
      return store.acquire(keys, ttl);
    },
    extend: (l, k, t) => store.extend(l, k, t),
    release: (l, k) => store.release(l, k),
    discard: (l, k) => store.discard(l, k),
    claim: (k, t) => store.claim(k, t),
    isLocked: (k) => store.isLocked(k),
    health: () => store.health(),
    close: () => store.close(),
  };
  return { backend, acquired };
}

@Controller('legacy')
class LegacyController {
  @Post()
  @Exclusive({ key: 'legacy-export', limit: 2 })
  run(): string {
    return 'ran';
  }
}

describe('limits on a backend without limit support', () => {
  it('refuses limit > 1 with InvalidLockArgumentError before any store call; limit 1 works', async () => {
    const { backend, acquired } = legacyBackend();
    const app = await Test.createTestingModule({
      imports: [DistributedLockModule.forRoot({ backend, logger: false })],
    }).compile();
    await app.init();
    try {
      const locks = app.get(LockService);
      const refused = locks.acquire('k', { limit: 2 });
      await expect(refused).rejects.toBeInstanceOf(InvalidLockArgumentError);
      await expect(refused).rejects.toMatchObject({ field: 'limit' });
      await expect(refused).rejects.toThrow(/does not support limit > 1/);
      await expect(locks.tryAcquire('k', { limit: 3 })).rejects.toMatchObject({ field: 'limit' });
      expect(acquired).toEqual([]);
      const lock = await locks.acquire('k', { limit: 1 });
      expect(lock.permit).toBe(0);
      await lock.release();
      expect(acquired).toEqual([['k']]);
    } finally {
      await app.close();
    }
  });

  it('fails bootstrap for an @Exclusive limit on that store', async () => {
    const { backend } = legacyBackend();
    const app = await Test.createTestingModule({
      imports: [DistributedLockModule.forRoot({ backend, logger: false })],
      controllers: [LegacyController],
    }).compile();
    try {
      const init = app.init();
      await expect(init).rejects.toBeInstanceOf(DistributedLockConfigError);
      await expect(init).rejects.toMatchObject({ field: 'LegacyController.run @Exclusive limit' });
    } finally {
      await app.close().catch(() => undefined);
    }
  });
});
