/**
 * The write batch with the client flavours users borrow: TLS, ioredis auto-pipelining, the offline
 * queue on, a client keyPrefix; extensions under load; jest fake timers around module creation.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { RedisFleet } from './support/redis-fleet';
import { makeTestCa } from './support/test-ca';
import { lockApp } from './support/lock-app';
import type { LockService } from '@app/distributed-lock';

const realSetTimeout = setTimeout;
const sleep = (ms: number) => new Promise((r) => realSetTimeout(r, ms));
const corked = (c: Redis) =>
  (c.stream as unknown as { writableCorked?: number }).writableCorked ?? 0;

/** 64 workers × `rounds` acquire/extend/release; resolves to counts or 'hung'. */
async function burst(locks: LockService, rounds: number, extend = false, distinct = false) {
  const errors: string[] = [];
  let ok = 0;
  const run = Promise.all(
    Array.from({ length: 64 }, async (_, w) => {
      for (let r = 0; r < rounds; r += 1) {
        try {
          const lock = await locks.acquire(distinct ? `cl:${w}:${r}` : `cl:${w % 32}`, {
            ttl: 2_000,
            wait: 3_000,
          });
          if (extend) await lock.extend(2_000);
          await lock.release();
          ok += 1;
        } catch (e) {
          errors.push(`${(e as Error).name}: ${(e as Error).message}`);
        }
      }
    }),
  );
  const res = await Promise.race([run.then(() => 'done'), sleep(20_000).then(() => 'hung')]);
  return { res, ok, errors: errors.slice(0, 3), nErrors: errors.length };
}

describe('write batch with borrowed client flavours', () => {
  let fleet: RedisFleet;
  beforeAll(async () => {
    fleet = await RedisFleet.start(1);
  });
  afterAll(async () => {
    await fleet.stop();
  });
  afterEach(() => jest.useRealTimers());

  const flavours: Array<[string, RedisOptions]> = [
    ['plain', {}],
    ['enableAutoPipelining', { enableAutoPipelining: true }],
    ['enableOfflineQueue: true', { enableOfflineQueue: true }],
    ['client keyPrefix', { keyPrefix: 'app:' }],
  ];
  it.each(flavours)(
    '%s: 64 × 20 acquire/extend/release settle, nothing left corked or held',
    async (_, extra) => {
      const client = new Redis(fleet.urls[0], {
        lazyConnect: true,
        enableOfflineQueue: false,
        commandTimeout: 5_000,
        ...extra,
      });
      await client.connect();
      const app = await lockApp({ clients: [client], commandTimeout: 1_000 });
      try {
        const out = await burst(app.locks, 20, true);
        console.log(_, out);
        expect(out).toMatchObject({ res: 'done', nErrors: 0, ok: 64 * 20 });
        expect(corked(client)).toBe(0);
        const inspect = new Redis(fleet.urls[0]);
        expect((await inspect.keys('*cl:*')).filter((k) => !k.includes('fence:'))).toEqual([]);
        inspect.disconnect();
      } finally {
        await app.close();
        client.disconnect();
      }
    },
  );

  it('TLS: 64 × 20 acquire/extend/release settle', async () => {
    const ca = makeTestCa();
    const tlsFleet = await RedisFleet.start(1, [], ca);
    const client = new Redis({
      host: '127.0.0.1',
      port: tlsFleet.nodes[0].port,
      tls: { ca: ca.ca, servername: 'localhost' },
      lazyConnect: true,
      enableOfflineQueue: false,
      commandTimeout: 5_000,
    });
    await client.connect();
    const app = await lockApp({ clients: [client], commandTimeout: 1_000 });
    try {
      const out = await burst(app.locks, 20, true);
      console.log('TLS', out, { corked: corked(client) });
      expect(out).toMatchObject({ res: 'done', nErrors: 0 });
      expect(corked(client)).toBe(0);
    } finally {
      await app.close();
      client.disconnect();
      await tlsFleet.stop();
      ca.cleanup();
    }
  });

  it.each([
    ['before the module is created', true],
    ['after the module is created', false],
  ])('jest.useFakeTimers() %s: concurrent work still completes', async (_, before) => {
    const client = new Redis(fleet.urls[0], { lazyConnect: true, enableOfflineQueue: false });
    await client.connect();
    if (before) jest.useFakeTimers();
    const app = await Promise.race([
      lockApp({ clients: [client] }),
      sleep(8_000).then(() => undefined),
    ]);
    try {
      expect(app).toBeDefined();
      if (!before) jest.useFakeTimers();
      // Distinct keys: a contended acquisition waits on timers, which a faked clock never fires.
      const out = await burst(app!.locks, 3, true, true);
      console.log('fake timers', _, out);
      expect(out).toMatchObject({ res: 'done', nErrors: 0 });
    } finally {
      jest.useRealTimers();
      await app?.close();
      client.disconnect();
    }
  });
});
