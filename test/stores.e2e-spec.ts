/**
 * Named stores: `stores: { name: backend }` beside the default store, `store` on calls and
 * `@Exclusive()`, events and health per store, unknown names and bad entries rejected. Real
 * redis-server processes (each store its own instance) and a real PostgreSQL server.
 */
import { Controller, Get, Injectable, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import type { Redis } from 'ioredis';
import { hostname } from 'node:os';
import { Pool } from 'pg';
import request from 'supertest';
import type { App } from 'supertest/types';
import {
  DistributedLockConfigError,
  DistributedLockModule,
  Exclusive,
  InvalidLockArgumentError,
  LockService,
  redisBackend,
  type DistributedLockModuleOptions,
  type LockBackend,
  type LockEvent,
} from '@app/distributed-lock';
import { postgresBackend } from '@app/distributed-lock/postgres';
import {
  DistributedLockHealthIndicator,
  DistributedLockHealthModule,
} from '@app/distributed-lock/terminus';
import { closeAll, eventually, inspectors } from './support/lock-app';
import { PostgresServer } from './support/postgres-server';
import { RedisFleet } from './support/redis-fleet';

@Injectable()
class Reports {
  runs = 0;
  @Exclusive({ key: 'report', store: 'archive' })
  export() {
    this.runs += 1;
    return this.runs;
  }
}

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly locks: DistributedLockHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.locks.isHealthy()]);
  }
}

describe('named stores', () => {
  let fleet: RedisFleet;
  let admin: Redis[];
  let pg: PostgresServer;
  const closers: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    [fleet, pg] = await Promise.all([RedisFleet.start(2), PostgresServer.start()]);
    admin = inspectors(fleet.urls);
  });
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((close) => close().catch(() => undefined)));
  });
  afterAll(async () => {
    await closeAll(admin);
    await Promise.all([fleet.stop(), pg.stop()]);
  });

  /** The default store on instance A; `archive` on instance B; `db` in PostgreSQL. */
  const options = (): DistributedLockModuleOptions => ({
    connections: [fleet.urls[0]],
    stores: {
      archive: redisBackend({ connections: [fleet.urls[1]], logger: false }),
      db: postgresBackend({ connectionString: pg.connectionString }),
    },
    logger: false,
  });

  async function boot(extra: Partial<DistributedLockModuleOptions> = {}) {
    const app = await Test.createTestingModule({
      imports: [DistributedLockModule.forRoot({ ...options(), ...extra })],
      providers: [Reports],
    }).compile();
    await app.init();
    closers.push(() => app.close());
    return app;
  }

  it('locks each key in the store the call names, independently of the same key elsewhere', async () => {
    const app = await boot();
    const locks = app.get(LockService);
    const events: LockEvent[] = [];
    const sub = locks.events.subscribe((e) => events.push(e));
    const inDefault = await locks.acquire('job', { ttl: 5_000 });
    const inArchive = await locks.acquire('job', { ttl: 5_000, store: 'archive' });
    const inDb = await locks.acquire('job', { ttl: 5_000, store: 'db' });
    expect(await admin[0].exists('lock:job')).toBe(1);
    expect(await admin[1].exists('lock:job')).toBe(1);
    expect(await locks.tryAcquire('job', { store: 'archive' })).toBeNull();
    expect(await locks.tryAcquire('job', { store: 'db' })).toBeNull();
    expect(await locks.isLocked('job', { store: 'db' })).toBe(true);
    await inArchive.release();
    expect(await admin[1].exists('lock:job')).toBe(0);
    expect(await admin[0].exists('lock:job')).toBe(1); // the default store's lock is untouched
    expect(await locks.isLocked('job')).toBe(true);
    await inDefault.release();
    await inDb.release();
    expect(await locks.isLocked('job', { store: 'db' })).toBe(false);
    sub.unsubscribe();
    const stores = events.filter((e) => e.type === 'acquired').map((e) => e.store);
    expect(stores).toEqual(['default', 'archive', 'db']);
    expect(events.filter((e) => e.type === 'busy').map((e) => e.store)).toEqual(['archive', 'db']);
  });

  it('stores the holder identity beside the secret value in Redis and PostgreSQL (default hostname:pid)', async () => {
    const named = await boot({ identity: 'billing-7f9c' });
    const locks = named.get(LockService);
    const inRedis = await locks.acquire('who', { ttl: 5_000 });
    const inDb = await locks.acquire('who', { ttl: 5_000, store: 'db' });
    const value = await admin[0].get('lock:who');
    expect(value).toMatch(/^[0-9a-f]{32}\/billing-7f9c$/);
    const db = new Pool({ connectionString: pg.connectionString });
    const { rows } = await db
      .query<{ owner: string }>("SELECT owner FROM distributed_locks WHERE key = 'who'")
      .finally(() => db.end());
    expect(rows[0].owner).toMatch(/^[0-9a-f]{32}\/billing-7f9c$/);
    await inRedis.release();
    await inDb.release();
    expect(await admin[0].exists('lock:who')).toBe(0);

    const unnamed = await boot();
    const lock = await unnamed.get(LockService).acquire('who-default', { ttl: 5_000 });
    expect(await admin[0].get('lock:who-default')).toMatch(
      new RegExp(
        `^[0-9a-f]{32}/${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${process.pid}$`,
      ),
    );
    await lock.release();
  });

  it('fails bootstrap for an empty or over-long identity, naming the field', async () => {
    for (const identity of ['', 'x'.repeat(201), 'a\nb']) {
      await expect(boot({ identity })).rejects.toMatchObject({
        name: DistributedLockConfigError.name,
        field: 'identity',
      });
    }
  });

  it('runs @Exclusive({ store }) in that store', async () => {
    const app = await boot();
    const locks = app.get(LockService);
    const elsewhere = await locks.acquire('report', { ttl: 5_000, store: 'archive' });
    // Held in `archive`: the decorated method (a plain method: onBusy 'throw') is busy there...
    await expect(app.get(Reports).export()).rejects.toThrow(/report/);
    await elsewhere.release();
    // ...and not in the default store, where the same key is free.
    const inDefault = await locks.acquire('report', { ttl: 5_000 });
    await expect(app.get(Reports).export()).resolves.toBe(1);
    await inDefault.release();
  });

  it('rejects an unknown store name in a call, before any store call', async () => {
    const app = await boot();
    const locks = app.get(LockService);
    for (const call of [
      () => locks.acquire('x', { store: 'nope' }),
      () => locks.tryAcquire('x', { store: 'nope' }),
      () => locks.runExclusive('x', () => 1, { store: 'nope' }),
      () => locks.isLocked('x', { store: 'nope' }),
    ]) {
      const error = await call().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidLockArgumentError);
      expect((error as InvalidLockArgumentError).field).toBe('store');
      expect(String(error)).toMatch(
        /no store is named "nope"; configured: 'default', 'archive', 'db'/,
      );
    }
  });

  it('fails app.init() for @Exclusive({ store }) naming no configured store, naming the handler', async () => {
    const app = await Test.createTestingModule({
      imports: [DistributedLockModule.forRoot({ connections: [fleet.urls[0]], logger: false })],
      providers: [Reports],
    }).compile();
    const error = await app.init().then(
      () => undefined,
      (e: unknown) => e,
    );
    closers.push(() => app.close());
    expect(error).toBeInstanceOf(DistributedLockConfigError);
    expect((error as DistributedLockConfigError).field).toBe('Reports.export @Exclusive store');
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['an entry that is not a backend', { cache: { acquire: () => undefined } }, 'stores.cache'],
    ['an entry named default', { default: {} }, 'stores.default'],
    ['a list instead of an object', [] as unknown as Record<string, unknown>, 'stores'],
  ])('fails bootstrap for %s, naming the field', async (_name, stores, field) => {
    const app = await Test.createTestingModule({
      imports: [
        DistributedLockModule.forRoot({
          connections: [fleet.urls[0]],
          stores: stores as Record<string, LockBackend>,
          logger: false,
        }),
      ],
    })
      .compile()
      .catch((e: unknown) => e);
    const error =
      app instanceof Error
        ? app
        : await (app as { init(): Promise<unknown> }).init().then(
            () => undefined,
            (e: unknown) => e,
          );
    if (!(app instanceof Error)) closers.push(() => (app as { close(): Promise<void> }).close());
    expect(error).toBeInstanceOf(DistributedLockConfigError);
    expect((error as DistributedLockConfigError).field).toBe(field);
  });

  it('health reports every store and is down while any store has no quorum', async () => {
    const module = await Test.createTestingModule({
      imports: [
        TerminusModule,
        DistributedLockModule.forRoot(options()),
        DistributedLockHealthModule,
      ],
      controllers: [HealthController],
    }).compile();
    const app: INestApplication<App> = module.createNestApplication({ logger: false });
    await app.init();
    closers.push(() => app.close());
    type Health = { details: { distributedLock: unknown }; error: { distributedLock: unknown } };
    const ok = await request(app.getHttpServer()).get('/health');
    expect(ok.status).toBe(200);
    const store = (status: string, up: number) => ({ status, instances: 1, up, quorum: 1 });
    expect((ok.body as Health).details.distributedLock).toEqual({
      status: 'up',
      instances: 1,
      up: 1,
      quorum: 1,
      stores: { default: store('up', 1), archive: store('up', 1), db: store('up', 1) },
    });
    fleet.nodes[1].pause();
    try {
      const failing = await request(app.getHttpServer()).get('/health');
      expect(failing.status).toBe(503);
      // The top-level counts stay the default store's; the store without quorum says so.
      expect((failing.body as Health).error.distributedLock).toMatchObject({
        status: 'down',
        up: 1,
        stores: { archive: store('down', 0), default: store('up', 1) },
      });
    } finally {
      fleet.nodes[1].resume();
    }
    expect(
      await eventually(
        async () => (await request(app.getHttpServer()).get('/health')).status === 200,
        5_000,
      ),
    ).toBe(true);
  });
});
