/**
 * Pre-existing (also before the write batch): a connection reset after Redis ran an acquisition but
 * before its reply was read. ioredis re-sends the unanswered script on the new connection
 * (`autoResendUnfulfilledCommands`, on by default); the second run finds the key holding our own
 * value and refuses, the library counts a refusal and sends no undo to a refuser, so the key stays
 * held by nobody for the whole TTL (every caller sees it busy).
 */
import { Redis } from 'ioredis';
import { RedisFleet } from './support/redis-fleet';
import { lockApp } from './support/lock-app';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('an acquisition re-sent by ioredis after a reset leaves no orphan lock', async () => {
  const fleet = await RedisFleet.start(1);
  const inspect = new Redis(fleet.urls[0]);
  const client = new Redis(fleet.urls[0], { lazyConnect: true, enableOfflineQueue: false });
  await client.connect();
  const app = await lockApp({ clients: [client], commandTimeout: 2_000 });
  try {
    await (await app.locks.acquire('orphan:warm', { ttl: 1_000 })).release();
    // Stop reading: Redis runs the script, its reply waits unread.
    client.stream.pause();
    const attempt = app.locks.tryAcquire('orphan', { ttl: 10_000 });
    for (let k = 0; k < 100 && (await inspect.exists('lock:orphan')) === 0; k += 1) await sleep(10);
    expect(await inspect.exists('lock:orphan')).toBe(1);
    client.stream.destroy();
    const got = await attempt.catch((e: unknown) => e);
    await sleep(500);
    const held = await inspect.get('lock:orphan');
    console.log('attempt gave', got === null ? null : (got as { constructor: { name: string } }).constructor.name, 'key', held, 'pttl', await inspect.pttl('lock:orphan'));
    if (got && typeof (got as { release?: unknown }).release === 'function') {
      await (got as { release(): Promise<void> }).release();
      expect(await inspect.exists('lock:orphan')).toBe(0);
    } else {
      // Nobody holds the lock: the key must not be held either.
      expect(held).toBeNull();
    }
  } finally {
    await app.close();
    client.disconnect();
    inspect.disconnect();
    await fleet.stop();
  }
});
