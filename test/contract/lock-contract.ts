import type { INestApplication, ModuleMetadata, Type } from '@nestjs/common';
import type { App } from 'supertest/types';
import { LockService, type LockEvent } from '@app/distributed-lock';
import type {
  BootedReplica,
  ContractContext,
  ContractLockOptions,
  LockContractHarness,
} from './contract-context';
import { adminContract } from './admin.contract';
import { exclusiveContract } from './exclusive.contract';
import { leaderContract } from './leader.contract';
import { limitsContract } from './limits.contract';
import { lockServiceContract } from './lock-service.contract';

export type { ContractLockOptions, LockContractHarness } from './contract-context';
export { limitsContract } from './limits.contract';
export { leaderContract } from './leader.contract';

/** A group of contract tests (`lockServiceContract`, `exclusiveContract`, `limitsContract`, ...). */
export type ContractSuite = (ctx: ContractContext) => void;

/** Every group of the contract, in order. */
export const FULL_CONTRACT: readonly ContractSuite[] = [
  lockServiceContract,
  exclusiveContract,
  limitsContract,
  adminContract,
  leaderContract,
];

/**
 * Registers the lock contract for one backend: every test of `lock-service.contract.ts`,
 * `exclusive.contract.ts` and `admin.contract.ts`, each on fresh replicas (see {@link LockContractHarness} for how a backend
 * joins). Call it from `test/contract/<backend>.contract.e2e-spec.ts`.
 */
export function describeLockContract(
  name: string,
  harness: LockContractHarness,
  suites: readonly ContractSuite[] = FULL_CONTRACT,
): void {
  describe(`lock contract: ${name}`, () => {
    const closers: Array<() => Promise<unknown>> = [];
    let other: LockService | undefined;
    let seq = 0;

    const ctx: ContractContext = {
      harness,
      key: (what) => `contract:${name}:${(seq += 1)}:${what}`,
      newId: (what) => `${what}-${(seq += 1)}`,
      short: (ms) => Math.max(ms, harness.minTtl ?? 0),
      bound: (ms, ttl) => Math.ceil((ms * Math.max(ttl, harness.minTtl ?? 0)) / ttl),

      async boot(metadata: ModuleMetadata = {}, options: ContractLockOptions = {}) {
        const moduleRef = await harness.compile(metadata, options);
        await moduleRef.init();
        closers.push(() => moduleRef.close());
        const locks = moduleRef.get(LockService);
        const events: LockEvent[] = [];
        const subscription = locks.events.subscribe((e) => events.push(e));
        closers.push(() => Promise.resolve(subscription.unsubscribe()));
        const replica: BootedReplica = { moduleRef, locks, events };
        return replica;
      },

      async bootHttp(controllers: Type[]) {
        const moduleRef = await harness.compile({ controllers }, {});
        const app: INestApplication = moduleRef.createNestApplication({ logger: false });
        await app.init();
        closers.push(() => app.close());
        return app.getHttpServer() as App;
      },

      async holdElsewhere(key, ttl = 60_000) {
        if (harness.holdElsewhere) return harness.holdElsewhere(key, ttl);
        other ??= (await ctx.boot()).locks;
        return (await other.acquire(key, { ttl })).fencingToken;
      },
    };

    beforeAll(async () => {
      await harness.start?.();
    });
    afterEach(async () => {
      await harness.restore();
      for (const close of closers.splice(0).reverse()) await close();
      other = undefined;
      await harness.cleanup?.();
    });
    afterAll(async () => {
      await harness.stop?.();
    });

    for (const suite of suites) suite(ctx);
  });
}
