import type { ModuleMetadata, Type } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import type { App } from 'supertest/types';
import type { DistributedLockModuleOptions, LockEvent, LockService } from '@app/distributed-lock';

/**
 * The lock contract, written once and run against every backend (ShedLock's
 * `AbstractLockProviderIntegrationTest`, madelson/DistributedLock's shared provider tests): the same
 * `LockService` and `@Exclusive()` behaviour whatever store is behind the module.
 *
 * A backend joins with `test/contract/<backend>.contract.e2e-spec.ts` calling
 * `describeLockContract(name, harness)`. The harness, for PostgreSQL for instance:
 *
 * ```ts
 * let server: PostgresServer;
 * let admin: Pool;
 * describeLockContract('postgres', {
 *   async start() { server = await PostgresServer.start(); admin = new Pool({ connectionString: server.url }); },
 *   async stop() { await admin.end(); await server.stop(); },
 *   compile: (metadata, options) =>
 *     Test.createTestingModule({
 *       ...metadata,
 *       imports: [
 *         DistributedLockModule.forRoot({ logger: false, ...options, backend: postgresBackend({ connectionString: server.url }) }),
 *         ...(metadata.imports ?? []),
 *       ],
 *     }).compile(),
 *   // holdElsewhere omitted: the contract boots a second replica with `compile` and acquires there.
 *   dropKey: async (key) => { await admin.query('DELETE FROM distributed_locks WHERE key = $1', [key]); },
 *   makeUnavailable: async () => server.pause(),      // SIGSTOP (or kill): calls must fail, not hang
 *   restore: async () => server.resume(),
 * });
 * ```
 */
export interface LockContractHarness {
  /**
   * Optional: the shortest TTL the store keeps as given, in ms (etcd leases are whole seconds with a
   * server minimum). The contract raises its short TTLs to it, and the bounds that wait for those
   * TTLs to pass scale with them; the assertions stay the same. Default 0.
   */
  readonly minTtl?: number;
  /** Once before the suite: start servers. */
  start?(): Promise<void> | void;
  /** Once after the suite: stop what `start` started. */
  stop?(): Promise<void> | void;
  /**
   * Compiles (does not initialise) one replica: a testing module that imports the lock module over
   * this backend with `options` merged over the harness's own (connections, logger off, timeouts),
   * plus `metadata`'s imports, controllers and providers. Every replica compiled in one test must
   * share one store.
   */
  compile(metadata: ModuleMetadata, options: ContractLockOptions): Promise<TestingModule>;
  /**
   * Optional: another replica takes `key` for `ttl` ms and keeps it (never released by the holder);
   * resolves with its fencing token. Without it the contract compiles a second replica with `compile`
   * and acquires there (the right thing for real stores; the in-memory store uses its controller).
   */
  holdElsewhere?(key: string, ttl: number): Promise<number> | number;
  /** Deletes the lock on `key` behind its holder's back, as if it had expired or been evicted. */
  dropKey(key: string): Promise<void> | void;
  /** Makes the store unable to decide (e.g. a majority paused): every lock call must fail, not hang. */
  makeUnavailable(): Promise<void> | void;
  /**
   * Ends `makeUnavailable` and resolves once lock calls succeed again (e.g. after the instances
   * answer). Also called after every test.
   */
  restore(): Promise<void> | void;
  /**
   * Optional: replicas compiled separately do not share a store (the in-memory kit: one store per
   * app). Contract tests that need an operator beside the holder then use the holder's own app.
   */
  readonly singleReplica?: boolean;
  /**
   * Optional: the store's fencing counter(s) of `key` as stored right now, read behind the library's
   * back (Redis: `fence:lock:<key>` on every instance; PostgreSQL: the key's row; etcd: the cluster
   * revision, which every later token exceeds). Lets the admin contract check that a force release
   * advances the counter itself, before any later acquisition could.
   */
  fenceCounters?(key: string): Promise<number[]>;
  /** Optional: after every test (after its apps closed), e.g. forget per-test state. */
  cleanup?(): Promise<void> | void;
}

/** Module options a contract test may set; the harness supplies the store. */
export type ContractLockOptions = Omit<
  DistributedLockModuleOptions,
  'connections' | 'clients' | 'backend'
>;

/** One initialised replica of a contract test, with every event it emitted. */
export interface BootedReplica {
  readonly moduleRef: TestingModule;
  readonly locks: LockService;
  readonly events: LockEvent[];
}

/** What the contract's test groups get from `describeLockContract`: replicas, keys, helpers. */
export interface ContractContext {
  readonly harness: LockContractHarness;
  /** Compiles and initialises a replica; closed after the test. */
  boot(metadata?: ModuleMetadata, options?: ContractLockOptions): Promise<BootedReplica>;
  /** An initialised HTTP application with `controllers`, for supertest; closed after the test. */
  bootHttp(controllers: Type[]): Promise<App>;
  /** Another replica takes `key` for `ttl` ms (default one minute); its fencing token. */
  holdElsewhere(key: string, ttl?: number): Promise<number>;
  /** A lock key no earlier test used: a lock a failed test left behind never leaks into the next. */
  key(what: string): string;
  /**
   * A short TTL the contract uses (`ms`), raised to the store's {@link LockContractHarness.minTtl};
   * `bound(ms)` scales a wait that depends on it by the same factor.
   */
  short(ms: number): number;
  /** `ms` times the factor `short()` raised a TTL of `ttl` ms by (1 when the store keeps `ttl`). */
  bound(ms: number, ttl: number): number;
  /** A fresh id for keys that decorators build (`order:<id>`). */
  newId(what: string): string;
}

// The contract's helpers are the suite-wide ones.
export { aborted, delay, eventually } from '../support/lock-app';
