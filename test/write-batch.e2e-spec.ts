import { Redis } from 'ioredis';
import { RedisFleet } from './support/redis-fleet';
import { lockApp, type LockApp } from './support/lock-app';

/** Counts what one client's socket hands to the kernel: one `_write` or `_writev` call each. */
function countSocketWrites(client: Redis): { writes: () => number; restore: () => void } {
  const stream = client.stream as unknown as Record<
    '_write' | '_writev',
    (...a: unknown[]) => void
  >;
  let writes = 0;
  const original = { _write: stream._write, _writev: stream._writev };
  for (const name of ['_write', '_writev'] as const) {
    const fn = original[name];
    stream[name] = function (this: unknown, ...args: unknown[]) {
      writes += 1;
      return fn.apply(this, args);
    };
  }
  return {
    writes: () => writes,
    restore: () => Object.assign(stream, original),
  };
}

const lockOptions = { ttl: 10_000 };

describe('Redis write batching (the commands of one turn leave in one socket write)', () => {
  let fleet: RedisFleet;
  let client: Redis;
  let app: LockApp | undefined;

  beforeAll(async () => {
    fleet = await RedisFleet.start(1);
  });
  beforeEach(async () => {
    client = new Redis(fleet.urls[0], { lazyConnect: true, enableOfflineQueue: false });
    await client.connect();
    app = await lockApp({ clients: [client] });
  });
  afterEach(async () => {
    jest.useRealTimers();
    await app?.close();
    app = undefined;
    await client.quit().catch(() => client.disconnect());
  });
  afterAll(async () => {
    await fleet.stop();
  });

  it('sends 64 concurrent acquisitions and releases in far fewer socket writes than commands', async () => {
    const locks = app!.locks;
    // Warm-up: scripts cached (a NOSCRIPT fallback would re-send outside any batch).
    await (await locks.acquire('batch:warm', lockOptions)).release();
    const counter = countSocketWrites(client);
    const rounds = 20;
    try {
      for (let r = 0; r < rounds; r += 1) {
        await Promise.all(
          Array.from({ length: 64 }, async (_, w) => {
            const lock = await locks.acquire(`batch:${r}:${w}`, lockOptions);
            await lock.release();
          }),
        );
      }
    } finally {
      counter.restore();
    }
    const commands = rounds * 64 * 2;
    // One write per command without batching (2,560 here); with it, about one per turn.
    expect(counter.writes()).toBeLessThan(commands / 4);
    expect(await client.keys('batch:*')).toEqual([]);
  });

  it('writes a lone operation at once: nothing in flight, nothing held back', async () => {
    const locks = app!.locks;
    await (await locks.acquire('batch:warm', lockOptions)).release();
    const stream = client.stream as unknown as { writableCorked: number };
    const lock = await locks.acquire('batch:lone', lockOptions);
    const release = lock.release();
    // The release script was written synchronously: the socket is not corked behind it.
    expect(stream.writableCorked).toBe(0);
    await release;
  });

  it('still flushes when the test fakes timers after the module loaded (jest fakes nextTick too)', async () => {
    const locks = app!.locks;
    await (await locks.acquire('batch:warm', lockOptions)).release();
    jest.useFakeTimers({ doNotFake: ['performance'] });
    const outcome = Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        const lock = await locks.acquire(`batch:fake:${w}`, lockOptions);
        await lock.release();
        return true;
      }),
    );
    // Real time, not the faked clock: fail instead of hanging if writes wait for a faked tick.
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<string>((resolve) => {
      timer = realSetTimeout(() => resolve('hung'), 5_000);
    });
    try {
      expect(await Promise.race([outcome.then(() => 'done'), hung])).toBe('done');
    } finally {
      realClearTimeout(timer);
    }
  });
});

/** The timer functions as they were before any test faked them. */
const realSetTimeout = setTimeout;
const realClearTimeout = clearTimeout;
