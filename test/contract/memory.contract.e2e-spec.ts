import { Test } from '@nestjs/testing';
import { DistributedLockTestingModule, LockTestingController } from '@app/distributed-lock/testing';
import { describeLockContract } from './lock-contract';

/**
 * The testing kit's in-memory store against the lock contract: what users' unit tests get without
 * Redis behaves as the Redis contract run does. Outages, lost keys and other replicas are driven by
 * the app's `LockTestingController`, exactly as users drive them.
 */
const controllers: LockTestingController[] = [];
/** The controller of the replica booted last (each contract test boots one). */
const current = (): LockTestingController => {
  const last = controllers.at(-1);
  if (!last) throw new Error('no app booted yet');
  return last;
};

describeLockContract('memory', {
  singleReplica: true,
  async compile(metadata, options) {
    const moduleRef = await Test.createTestingModule({
      ...metadata,
      imports: [DistributedLockTestingModule.forRoot(options), ...(metadata.imports ?? [])],
    }).compile();
    controllers.push(moduleRef.get(LockTestingController));
    return moduleRef;
  },
  holdElsewhere: (key, ttl) => current().holdElsewhere(key, ttl),
  dropKey: (key) => {
    current().expire(key);
  },
  makeUnavailable: () => {
    for (const c of controllers) c.setUnavailable(true);
  },
  restore: () => {
    for (const c of controllers) c.setUnavailable(false);
  },
  cleanup: () => {
    controllers.length = 0;
  },
});
