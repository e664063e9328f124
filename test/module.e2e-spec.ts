import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import {
  DistributedLockConfigError,
  DistributedLockModule,
  InvalidLockArgumentError,
  LockService,
  MAX_KEY_LENGTH,
  redisBackend,
  type DistributedLockModuleOptions,
} from '@app/distributed-lock';
import { RedisFleet } from './support/redis-fleet';
import {
  CapturingLogger,
  closeAll,
  eventually,
  inspectors,
  lockApp,
  type LockApp,
} from './support/lock-app';

async function bootError(options: DistributedLockModuleOptions): Promise<unknown> {
  const app = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ logger: false, ...options })],
  })
    .compile()
    .catch((e: unknown) => e);
  if (app instanceof Error) return app;
  const result = await (
    app as Awaited<ReturnType<ReturnType<typeof Test.createTestingModule>['compile']>>
  )
    .init()
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  // Nest 11 rethrows a failed init from close(); the error was already captured above.
  await (app as { close(): Promise<void> }).close().catch(() => undefined);
  return result;
}

describe('DistributedLockModule', () => {
  let fleet: RedisFleet;
  beforeAll(async () => {
    fleet = await RedisFleet.start(3);
  });
  afterAll(async () => {
    await fleet.stop();
  });

  describe('rejects invalid options at bootstrap, naming the option', () => {
    const url = () => fleet.urls[0];
    it.each<[string, () => DistributedLockModuleOptions, string]>([
      ['no connections', () => ({}), 'connections'],
      ['an empty connection list', () => ({ connections: [] }), 'connections'],
      [
        'both connections and clients',
        () => ({ connections: [url()], clients: [] }),
        'connections',
      ],
      ['a negative ttl', () => ({ connections: [url()], ttl: -1 }), 'ttl'],
      ['a zero ttl', () => ({ connections: [url()], ttl: 0 }), 'ttl'],
      [
        'a non-numeric ttl',
        () => ({ connections: [url()], ttl: '30s' as unknown as number }),
        'ttl',
      ],
      ['a ttl setTimeout cannot hold', () => ({ connections: [url()], ttl: 2 ** 31 }), 'ttl'],
      ['a fractional ttl', () => ({ connections: [url()], ttl: 10.5 }), 'ttl'],
      [
        'a ttl too short for extendThreshold',
        () => ({ connections: [url()], ttl: 1_000, extendThreshold: 950 }),
        'ttl',
      ],
      [
        'a negative retry count',
        () => ({ connections: [url()], retry: { count: -1 } }),
        'retry.count',
      ],
      ['jitter above 1', () => ({ connections: [url()], retry: { jitter: 2 } }), 'retry.jitter'],
      [
        'maxDelay below delay',
        () => ({ connections: [url()], retry: { delay: 100, maxDelay: 10 } }),
        'retry.maxDelay',
      ],
      ['a driftFactor of 1', () => ({ connections: [url()], driftFactor: 1 }), 'driftFactor'],
      [
        'a misspelt option',
        () => ({ connections: [url()], tll: 5 }) as DistributedLockModuleOptions,
        'tll',
      ],
      ['a non-client in clients', () => ({ clients: [{} as Redis] }), 'clients[0]'],
      ['a logger without methods', () => ({ connections: [url()], logger: {} as never }), 'logger'],
      [
        'the same server twice',
        () => ({ connections: [url(), `redis://localhost:${fleet.nodes[0].port}`] }),
        'connections',
      ],
    ])('%s', async (_name, options, field) => {
      const error = await bootError(options());
      expect(error).toBeInstanceOf(DistributedLockConfigError);
      expect((error as DistributedLockConfigError).field).toBe(field);
      expect((error as Error).message).toContain(field);
    });
  });

  describe('redisBackend(): the Redis store as a factory', () => {
    it('locks like the connections shorthand, with its own keyPrefix, on 3 instances', async () => {
      const app = await lockApp({
        backend: redisBackend({ connections: fleet.urls, keyPrefix: 'factory:' }),
      });
      const admin = inspectors(fleet.urls);
      try {
        const lock = await app.locks.acquire('job', { ttl: 5_000 });
        expect(await Promise.all(admin.map((c) => c.exists('factory:job')))).toEqual([1, 1, 1]);
        expect(await app.locks.tryAcquire('job')).toBeNull();
        await lock.release();
        expect(await app.locks.isLocked('job')).toBe(false);
      } finally {
        await app.close();
        await closeAll(admin);
      }
    });

    it.each<[string, () => Parameters<typeof redisBackend>[0], string]>([
      ['no connections', () => ({}), 'connections'],
      [
        'both connections and clients',
        () => ({ connections: ['redis://a'], clients: [] }),
        'connections',
      ],
      ['a bad entry', () => ({ connections: [''] }), 'connections[0]'],
      ['a driftFactor of 1', () => ({ connections: ['redis://a'], driftFactor: 1 }), 'driftFactor'],
      [
        'a zero commandTimeout',
        () => ({ connections: ['redis://a'], commandTimeout: 0 }),
        'commandTimeout',
      ],
      [
        'a non-string keyPrefix',
        () => ({ connections: ['redis://a'], keyPrefix: 1 as never }),
        'keyPrefix',
      ],
      ['a misspelt option', () => ({ connections: ['redis://a'], ttl: 5 }) as never, 'ttl'],
    ])('rejects %s, naming the field, before connecting', (_name, options, field) => {
      let error: unknown;
      try {
        redisBackend(options());
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DistributedLockConfigError);
      expect((error as DistributedLockConfigError).field).toBe(field);
    });
  });

  it('warns that an even number of instances tolerates no more failures than one fewer', async () => {
    const logger = new CapturingLogger();
    const app = await lockApp({ connections: fleet.urls.slice(0, 2), logger });
    await app.close();
    expect(logger.at('warn').join('\n')).toMatch(/2 Redis instances configured: an even number/);
  });

  describe('rejects invalid call arguments before any Redis call', () => {
    let app: LockApp;
    let admin: Redis[];
    beforeAll(async () => {
      app = await lockApp({ connections: fleet.urls });
      admin = inspectors(fleet.urls);
    });
    afterAll(async () => {
      await app.close();
      await closeAll(admin);
    });
    const scriptCalls = async () => {
      let calls = 0;
      for (const c of admin) {
        const info = await c.info('commandstats');
        for (const m of info.matchAll(/cmdstat_(?:evalsha|eval|exists):calls=(\d+)/g))
          calls += Number(m[1]);
      }
      return calls;
    };
    const long = 'k'.repeat(MAX_KEY_LENGTH + 1);
    it.each<[string, (l: LockService) => Promise<unknown>, string]>([
      ['an empty key list', (l) => l.acquire([]), 'key'],
      ['an empty key', (l) => l.acquire(''), 'key'],
      ['a non-string key', (l) => l.tryAcquire(42 as unknown as string), 'key'],
      ['an empty key inside a list', (l) => l.acquire(['a', '']), 'key[1]'],
      ['an over-long key', (l) => l.runExclusive(long, () => 1), 'key'],
      ['a negative ttl', (l) => l.acquire('x', { ttl: -5 }), 'ttl'],
      ['a non-integer ttl', (l) => l.tryAcquire('x', { ttl: 1.5 }), 'ttl'],
      ['a ttl too short to auto-extend', (l) => l.runExclusive('x', () => 1, { ttl: 150 }), 'ttl'],
      ['a negative wait', (l) => l.acquire('x', { wait: -1 }), 'wait'],
      [
        'lockAtLeastFor above lockAtMostFor',
        (l) => l.runExclusive('x', () => 1, { lockAtLeastFor: 5, lockAtMostFor: 1 }),
        'lockAtLeastFor',
      ],
      ['work that is not a function', (l) => l.runExclusive('x', 'nope' as never), 'work'],
      ['an empty key to isLocked', (l) => l.isLocked(''), 'key'],
    ])('%s', async (_name, call, field) => {
      const before = await scriptCalls();
      const error = await call(app.locks).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidLockArgumentError);
      expect((error as InvalidLockArgumentError).field).toBe(field);
      expect(await scriptCalls()).toBe(before);
    });
  });

  it('forRootAsync resolves options through DI and is global', async () => {
    const app = await Test.createTestingModule({
      imports: [
        DistributedLockModule.forRootAsync({
          useFactory: () => ({
            connections: fleet.urls,
            logger: false as const,
            keyPrefix: 'async:',
          }),
        }),
      ],
    }).compile();
    await app.init();
    const lock = await app.get(LockService).acquire('k');
    const [admin] = inspectors([fleet.urls[0]]);
    expect(await admin.exists('async:k')).toBe(1);
    await app.close();
    expect(await admin.exists('async:k')).toBe(0);
    expect(lock.signal.aborted).toBe(true);
    await closeAll([admin]);
  });

  it('closes the connections it owns, and never the clients it was given', async () => {
    const own = await lockApp({ connections: fleet.urls });
    const clients = fleet.urls.map(
      (u) => new Redis(u, { enableOfflineQueue: false, commandTimeout: 500, lazyConnect: true }),
    );
    await Promise.all(clients.map((c) => c.connect()));
    const borrowed = await lockApp({ clients });
    const admin = inspectors([fleet.urls[0]]);
    const countClients = async () =>
      String(await admin[0].call('CLIENT', 'LIST'))
        .trim()
        .split('\n').length;
    const before = await countClients();
    await own.close();
    // The server drops a closed connection from its list once it reads the QUIT (or the FIN).
    await eventually(async () => (await countClients()) === before - 1, 5_000);
    expect(await countClients()).toBe(before - 1);
    await borrowed.locks.runExclusive('borrowed', () => undefined);
    await borrowed.close();
    expect(clients.map((c) => c.status)).toEqual(['ready', 'ready', 'ready']);
    // Handed back as they came: none of our listeners left on the user's clients.
    expect(clients.map((c) => c.listenerCount('error') + c.listenerCount('ready'))).toEqual([
      0, 0, 0,
    ]);
    expect(await clients[0].ping()).toBe('PONG');
    await closeAll([...clients, ...admin]);
  });

  it('releases every held lock on app.close()', async () => {
    const app = await lockApp({ connections: fleet.urls });
    const locks = await Promise.all(['s1', 's2', 's3'].map((k) => app.locks.acquire(k)));
    const admin = inspectors(fleet.urls);
    expect(await admin[0].exists('lock:s1', 'lock:s2', 'lock:s3')).toBe(3);
    await app.close();
    for (const c of admin) expect(await c.exists('lock:s1', 'lock:s2', 'lock:s3')).toBe(0);
    expect(locks.every((l) => l.signal.aborted)).toBe(true);
    await closeAll(admin);
  });

  it('lets running work finish on app.close(), then releases', async () => {
    const app = await lockApp({ connections: fleet.urls, shutdownTimeout: 5_000 });
    let finished = false;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const work = app.locks.runExclusive('draining', async (lock) => {
      started();
      await new Promise((r) => setTimeout(r, 300));
      finished = !lock.signal.aborted;
    });
    await running;
    await app.close();
    await work;
    expect(finished).toBe(true);
    const admin = inspectors(fleet.urls);
    for (const c of admin) expect(await c.exists('lock:draining')).toBe(0);
    await closeAll(admin);
  });

  it('starts no new exclusive work once app.close() began, and abandons work still running at shutdownTimeout (signal aborted, lock left to expire)', async () => {
    const app = await lockApp({ connections: fleet.urls, shutdownTimeout: 300 });
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    let abortedAt: number | undefined;
    const t0 = Date.now();
    const stubborn = app.locks.runExclusive('stubborn', async (lock) => {
      lock.signal.addEventListener('abort', () => (abortedAt = Date.now() - t0), { once: true });
      started();
      await new Promise((r) => setTimeout(r, 1_500));
      return lock.signal.aborted;
    });
    await running;
    const closing = app.close();
    await new Promise((r) => setImmediate(r));
    await expect(app.locks.runExclusive('late', () => 'ran')).rejects.toThrow(/shutting down/);
    await closing;
    expect(abortedAt).toBeGreaterThanOrEqual(250);
    expect(abortedAt).toBeLessThan(1_500);
    // The work is still inside: its lock is left to expire by its TTL, never deleted under it.
    const admin = inspectors(fleet.urls);
    for (const c of admin) expect(await c.exists('lock:stubborn')).toBe(1);
    await expect(stubborn).resolves.toBe(true);
    for (const c of admin) await c.del('lock:stubborn');
    await closeAll(admin);
  });
});
