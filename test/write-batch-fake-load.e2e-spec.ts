/**
 * The library loaded while jest's fake timers were installed (as under `fakeTimers: {enableGlobally:
 * true}` in a jest config), then the test goes back to real timers for real Redis. The write batch
 * captured `process.nextTick` at load: if that is the fake one, corked writes wait forever.
 */
import { Redis } from 'ioredis';
import { RedisFleet } from './support/redis-fleet';
import type * as LockAppModule from './support/lock-app';

jest.useFakeTimers();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { lockApp } = require('./support/lock-app') as typeof LockAppModule;
jest.useRealTimers();

const realSetTimeout = setTimeout;

describe('write batch when the library was loaded under fake timers', () => {
  let fleet: RedisFleet;
  beforeAll(async () => {
    fleet = await RedisFleet.start(1);
  });
  afterAll(async () => {
    await fleet.stop();
  });

  it('still sends concurrent commands once the test is back on real timers', async () => {
    const client = new Redis(fleet.urls[0], { lazyConnect: true, enableOfflineQueue: false });
    await client.connect();
    const app = await lockApp({ clients: [client], commandTimeout: 2_000 });
    try {
      const outcome = Promise.all(
        Array.from({ length: 16 }, async (_, w) => {
          const lock = await app.locks.acquire(`fake-load:${w}`, { ttl: 10_000 });
          await lock.release();
        }),
      ).then(
        () => 'done',
        (e: unknown) => `failed: ${String(e)}`,
      );
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<string>((r) => {
        timer = realSetTimeout(() => r('hung'), 8_000);
      });
      try {
        expect(await Promise.race([outcome, hung])).toBe('done');
      } finally {
        clearTimeout(timer);
      }
    } finally {
      await app.close();
      client.disconnect();
    }
  });
});
