/**
 * ioredis re-sends the commands a connection reset left unanswered (`autoResendUnfulfilledCommands`,
 * on by default, for every `maxRetriesPerRequest` above 0: the defaults of a client passed as
 * `clients`). Redis may have run the first copy already: the second must then find its own work
 * and count it, never read it as someone else's and leave a key held by nobody for its whole TTL
 * (or lose a cron tick nobody runs).
 */
import { Redis } from 'ioredis';
import { redisBackend, type LockBackend } from '@app/distributed-lock';
import { RedisFleet } from './support/redis-fleet';
import { lockApp, type LockApp } from './support/lock-app';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('an operation ioredis re-sends after a connection reset', () => {
  let fleet: RedisFleet;
  let inspect: Redis;
  let client: Redis;
  let app: LockApp | undefined;

  beforeAll(async () => {
    fleet = await RedisFleet.start(1);
    inspect = new Redis(fleet.urls[0]);
  });
  beforeEach(async () => {
    await inspect.flushall();
    // A client as users create it: ioredis defaults (it re-sends unanswered commands on reconnect).
    client = new Redis(fleet.urls[0], { lazyConnect: true });
    await client.connect();
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    client.disconnect();
  });
  afterAll(async () => {
    inspect.disconnect();
    await fleet.stop();
  });

  /**
   * Runs `op` with the client's replies unread until Redis has run it (a key matching `pattern`
   * exists), then resets the connection: ioredis reconnects and sends the same command again.
   */
  async function acrossReset<T>(pattern: string, op: () => Promise<T>): Promise<T> {
    const written = async () => (await inspect.keys(pattern)).length > 0;
    client.stream.pause();
    const outcome = op();
    for (let k = 0; k < 200 && !(await written()); k += 1) await sleep(5);
    expect(await written()).toBe(true);
    client.stream.destroy();
    return outcome;
  }

  const boot = async () => {
    app = await lockApp({ clients: [client], commandTimeout: 2_000 });
    await (await app.locks.acquire('warm', { ttl: 1_000 })).release();
    return app.locks;
  };

  it('an acquisition is granted (and its release frees the key), not refused with the key held', async () => {
    const locks = await boot();
    const lock = await acrossReset('lock:resend:one', () =>
      locks.tryAcquire('resend:one', { ttl: 10_000 }),
    );
    expect(lock).not.toBeNull();
    // The token the first copy issued: the counter it advanced, not a second advance.
    expect(lock!.fencingToken).toBe(Number(await inspect.get('fence:lock:resend:one')));
    await lock!.release();
    expect(await inspect.exists('lock:resend:one')).toBe(0);
  });

  it('a two-key acquisition is granted and released whole', async () => {
    const locks = await boot();
    const lock = await acrossReset('lock:resend:a', () =>
      locks.tryAcquire(['resend:a', 'resend:b'], { ttl: 10_000 }),
    );
    expect(lock).not.toBeNull();
    await lock!.release();
    expect(await inspect.exists('lock:resend:a', 'lock:resend:b')).toBe(0);
  });

  it('a limited acquisition takes one permit, not a second one left behind', async () => {
    const locks = await boot();
    const lock = await acrossReset('lock:resend:limited*', () =>
      locks.tryAcquire('resend:limited', { ttl: 10_000, limit: 3 }),
    );
    expect(lock).not.toBeNull();
    expect(await inspect.keys('lock:resend:limited*')).toHaveLength(1);
    await lock!.release();
    expect(await inspect.keys('lock:resend:limited*')).toEqual([]);
  });

  it('a cron tick claim is won by the replica whose claim Redis ran (the tick is not lost)', async () => {
    const backend: LockBackend = redisBackend({ clients: [client], logger: false });
    await backend.connect({ identity: 'resend-test' });
    try {
      const won = await acrossReset('lock:resend:tick', () => backend.claim('resend:tick', 10_000));
      expect(won).toBe(true);
    } finally {
      await backend.close();
    }
  });
});
