import { Redis } from 'ioredis';
import { LockUnavailableError } from '@app/distributed-lock';
import { LockManager } from '@app/distributed-lock/lock-manager';
import { RedisFleet } from './support/redis-fleet';
import { makeTestCa } from './support/test-ca';
import { CapturingLogger, closeAll, lockApp } from './support/lock-app';

/** The documented least-privilege ACL for the lock client (README, "Security"). */
export const LOCK_ACL =
  'on >s3cret-pass -@all +evalsha +eval +set +get +del +exists +pexpire +ping +info +publish +subscribe +unsubscribe +script|load ~lock:* ~fence:lock:* &lock:*';

describe('security', () => {
  it('works with the documented least-privilege ACL user, and that user can touch nothing else', async () => {
    const fleet = await RedisFleet.start(3);
    const admins = fleet.urls.map((u) => new Redis(u));
    try {
      await Promise.all(
        admins.map((a) => a.call('ACL', 'SETUSER', 'locker', ...LOCK_ACL.split(' '))),
      );
      await Promise.all(admins.map((a) => a.call('ACL', 'SETUSER', 'default', 'off')));
      const connections = fleet.nodes.map((n) => ({
        host: '127.0.0.1',
        port: n.port,
        username: 'locker',
        password: 's3cret-pass',
      }));
      const app = await lockApp({ connections });
      const lock = await app.locks.acquire(['acl:a', 'acl:b'], { ttl: 5_000 });
      expect(lock.fencingToken).toBeGreaterThan(0);
      await lock.extend();
      expect(await app.locks.isLocked('acl:a')).toBe(true);
      await lock.release();
      expect(await app.locks.runExclusive('acl:run', (l) => l.keys, { ttl: 1_000 })).toEqual([
        'acl:run',
      ]);
      // The per-tick claim @Exclusive makes for cron handlers (internal API).
      expect(await app.app.get(LockManager).claim('acl:tick', 1_000)).toBe(true);
      // A waiter is woken by the release announcement (PUBLISH in the script, SUBSCRIBE on the
      // waiter's connection), not by its 2 s backoff: the ACL allows both.
      const other = await lockApp({ connections });
      const held = await app.locks.acquire('acl:handoff', { ttl: 5_000 });
      const waiting = other.locks.acquire('acl:handoff', {
        wait: 15_000,
        retry: { delay: 6_000, maxDelay: 6_000 },
      });
      await new Promise((r) => setTimeout(r, 200));
      const released = performance.now();
      await held.release();
      await (await waiting).release();
      // Woken by the release announcement (the ACL allows it), not the 4.5-7.5 s backoff.
      expect(performance.now() - released).toBeLessThan(3_000);
      await other.close();
      await app.close();

      const locker = new Redis({
        host: '127.0.0.1',
        port: fleet.nodes[0].port,
        username: 'locker',
        password: 's3cret-pass',
      });
      await expect(locker.get('orders:1')).rejects.toThrow(/NOPERM/);
      await expect(locker.flushall()).rejects.toThrow(/NOPERM/);
      await closeAll([locker]);
    } finally {
      await closeAll(admins);
      await fleet.stop();
    }
  });

  it('without +subscribe, waiting falls back to polling: no hot loop of SUBSCRIBE attempts', async () => {
    const fleet = await RedisFleet.start(1);
    const admin = new Redis(fleet.urls[0]);
    try {
      const acl = LOCK_ACL.replace('+subscribe ', '');
      await admin.call('ACL', 'SETUSER', 'locker', ...acl.split(' '));
      const connection = {
        host: '127.0.0.1',
        port: fleet.nodes[0].port,
        username: 'locker',
        password: 's3cret-pass',
      };
      const holder = await lockApp({ connections: [connection] });
      const waiter = await lockApp({ connections: [connection] });
      const held = await holder.locks.acquire('acl:poll', { ttl: 5_000 });
      const waiting = waiter.locks.acquire('acl:poll', {
        wait: 5_000,
        retry: { delay: 200, maxDelay: 200, jitter: 0 },
      });
      await new Promise((r) => setTimeout(r, 1_000));
      await held.release();
      await (await waiting).release();
      const stats = String(await admin.info('commandstats'));
      const evalsha = Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0);
      // About 5 polls in 1 s at 200 ms (plus the holder's calls), not thousands of retries.
      expect(evalsha).toBeLessThan(30);

      // A waiter sleeping out a long poll is woken by close(), not left to keep the process alive.
      const again = await holder.locks.acquire('acl:poll', { ttl: 5_000 });
      const sleeping = waiter.locks
        .acquire('acl:poll', { wait: 30_000, retry: { delay: 8_000, maxDelay: 8_000, jitter: 0 } })
        .catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 300));
      const t0 = performance.now();
      await waiter.close();
      expect(String(await sleeping)).toMatch(/shutting down/);
      expect(performance.now() - t0).toBeLessThan(2_000); // before the fix: the 8 s poll ran out
      await again.release();
      await holder.close();
    } finally {
      await admin.quit();
      await fleet.stop();
    }
  });

  it('reports a missing ACL permission as unavailable with the NOPERM reason, never as busy', async () => {
    const fleet = await RedisFleet.start(1);
    const admin = new Redis(fleet.urls[0]);
    try {
      await admin.call(
        'ACL',
        'SETUSER',
        'narrow',
        ...LOCK_ACL.replace('+pexpire ', '')
          .replace('+set ', '')
          .replace('>s3cret-pass', '>narrow-pass')
          .split(' '),
      );
      const app = await lockApp({
        connections: [
          {
            host: '127.0.0.1',
            port: fleet.nodes[0].port,
            username: 'narrow',
            password: 'narrow-pass',
          },
        ],
      });
      const error = await app.locks.tryAcquire('noperm').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockUnavailableError);
      expect(String((error as Error).cause)).toMatch(/NOPERM|can't run this command/i);
      expect(String((error as Error).cause)).not.toContain('narrow-pass');
      await app.close();
    } finally {
      await closeAll([admin]);
      await fleet.stop();
    }
  });

  describe('TLS', () => {
    const ca = makeTestCa();
    let fleet: RedisFleet;
    beforeAll(async () => {
      fleet = await RedisFleet.start(3, [], ca);
    });
    afterAll(async () => {
      await fleet.stop();
      ca.cleanup();
    });

    it('locks over TLS with a CA given through ioredis options', async () => {
      const app = await lockApp({
        connections: fleet.nodes.map((n) => ({
          host: '127.0.0.1',
          port: n.port,
          tls: { ca: ca.ca, servername: 'localhost' },
        })),
      });
      const lock = await app.locks.acquire('tls');
      expect(lock.fencingToken).toBeGreaterThan(0);
      await lock.release();
      await app.close();
    });

    it('explains a plaintext client at a TLS port instead of "Connection is closed."', async () => {
      const logger = new CapturingLogger();
      const app = await lockApp({
        connections: fleet.nodes.map((n) => `redis://127.0.0.1:${n.port}`),
        logger,
        commandTimeout: 300,
      });
      await expect(app.locks.tryAcquire('plain')).rejects.toBeInstanceOf(LockUnavailableError);
      await app.close();
      expect(logger.at('error').join('\n')).toMatch(
        /closed the connection before answering.*TLS.*rediss:\/\//,
      );
    });
  });
});
