import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DistributedLockModule, LockService, type Lock } from 'nestjs-distributed-lock';
import { check } from './support.js';

@Module({})
class LockScenarioModule {
  static register(connections: string[]): DynamicModule {
    return {
      module: LockScenarioModule,
      imports: [DistributedLockModule.forRoot({ connections, logger: false })],
    };
  }
}

/** (a) LockService: busy is `null`, release frees the key, fencing tokens grow, runExclusive returns. */
export async function lockScenario(connections: string[], run: string): Promise<string> {
  const app = await NestFactory.createApplicationContext(LockScenarioModule.register(connections), {
    logger: ['error', 'warn'],
  });
  try {
    const locks = app.get(LockService);
    const key = `${run}:a`;
    const first = await locks.acquire(key, { ttl: 10_000 });
    check(await locks.isLocked(key), 'isLocked() is false while the lock is held');
    const second = await locks.tryAcquire(key, { ttl: 10_000 });
    check(second === null, 'tryAcquire() of a held key did not return null');
    await first.release();
    check(!(await locks.isLocked(key)), 'isLocked() is still true after release()');
    const again = await locks.acquire(key, { ttl: 10_000 });
    check(
      again.fencingToken > first.fencingToken,
      `re-acquired fencingToken ${again.fencingToken} is not larger than ${first.fencingToken}`,
    );
    await again.release();
    const value = await locks.runExclusive(`${key}:run`, (lock: Lock) => {
      check(
        locks.current()?.fencingToken === lock.fencingToken,
        'current() inside runExclusive() is not the running lock',
      );
      return 42;
    });
    check(value === 42, `runExclusive() returned ${String(value)} instead of the work's 42`);
    return (
      `acquire, tryAcquire while held = null, release, re-acquire fencingToken ` +
      `${first.fencingToken} -> ${again.fencingToken}, runExclusive returned 42`
    );
  } finally {
    await app.close();
  }
}
