import { Injectable, Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  DistributedLockModule,
  Exclusive,
  LockBusyError,
  LockService,
  type DistributedLockModuleOptions,
  type Lock,
} from 'nestjs-distributed-lock';
import { check } from './check';

@Injectable()
class Billing {
  runs = 0;

  /** `@Exclusive` on a provider method: a second call while the first holds the key is busy. */
  @Exclusive({ key: 'compat:billing', ttl: 10_000 })
  async charge(hold: Promise<void>): Promise<number> {
    this.runs += 1;
    await hold;
    return this.runs;
  }
}

@Module({})
class LockSmokeModule {
  static register(options: DistributedLockModuleOptions): DynamicModule {
    return {
      module: LockSmokeModule,
      imports: [DistributedLockModule.forRoot({ ...options, logger: false })],
      providers: [Billing],
    };
  }
}

/**
 * LockService and `@Exclusive` on one store: busy is `null`, release frees the key, fencing tokens
 * grow, runExclusive returns the work's value, a second `@Exclusive` call while the first runs
 * throws LockBusyError. Returns a one-line summary.
 */
export async function lockSmoke(
  options: DistributedLockModuleOptions,
  run: string,
): Promise<string> {
  const app = await NestFactory.createApplicationContext(LockSmokeModule.register(options), {
    logger: ['error', 'warn'],
  });
  try {
    const locks = app.get(LockService);
    const key = `${run}:a`;
    const first = await locks.acquire(key, { ttl: 10_000 });
    check(await locks.isLocked(key), 'isLocked() is false while the lock is held');
    check(
      (await locks.tryAcquire(key, { ttl: 10_000 })) === null,
      'tryAcquire() of a held key is not null',
    );
    await first.release();
    check(!(await locks.isLocked(key)), 'isLocked() is still true after release()');
    const again = await locks.acquire(key, { ttl: 10_000 });
    check(
      again.fencingToken > first.fencingToken,
      `fencingToken ${again.fencingToken} after re-acquire is not above ${first.fencingToken}`,
    );
    await again.release();
    const value = await locks.runExclusive(`${key}:run`, (lock: Lock) => {
      check(
        locks.current()?.fencingToken === lock.fencingToken,
        'current() is not the running lock',
      );
      return 42;
    });
    check(value === 42, `runExclusive() returned ${String(value)}, not 42`);

    const billing = app.get(Billing);
    let let_go!: () => void;
    const hold = new Promise<void>((resolve) => (let_go = resolve));
    const running = billing.charge(hold);
    const second = await billing.charge(Promise.resolve()).catch((e: unknown) => e);
    let_go();
    check(
      second instanceof LockBusyError,
      `second @Exclusive call: expected LockBusyError, got ${String(second)}`,
    );
    check(
      (await running) === 1 && billing.runs === 1,
      `@Exclusive method ran ${billing.runs} times, want 1`,
    );
    return `LockService (busy = null, fencing ${first.fencingToken} -> ${again.fencingToken}, runExclusive) and @Exclusive (2nd call busy)`;
  } finally {
    await app.close();
  }
}
