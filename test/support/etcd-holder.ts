/**
 * A replica in its own process that takes `LOCK_KEY` on etcd (`ETCD_HOSTS`, comma-separated) with
 * `LOCK_TTL` ms, keeps it extended, and reports `{ token }` once it holds it; then it waits to be
 * killed. For "a holder process killed: the lock is free within its TTL".
 */
import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { DistributedLockModule, LockService } from '@app/distributed-lock';
import { etcdBackend } from '@app/distributed-lock/etcd';

async function main(): Promise<void> {
  const app = await Test.createTestingModule({
    imports: [
      DistributedLockModule.forRoot({
        backend: etcdBackend({ hosts: process.env.ETCD_HOSTS!.split(','), commandTimeout: 500 }),
        logger: false,
      }),
    ],
  }).compile();
  await app.init();
  const locks = app.get(LockService);
  await locks.runExclusive(
    process.env.LOCK_KEY!,
    (lock) =>
      new Promise<void>(() => {
        process.send!({ token: lock.fencingToken });
      }),
    { ttl: Number(process.env.LOCK_TTL) },
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
