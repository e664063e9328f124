import { performance } from 'node:perf_hooks';
import { Pool, type PoolClient } from 'pg';
import {
  InvalidLockArgumentError,
  LockBusyError,
  LockLostError,
  LockUnavailableError,
  type Lock,
  type LockBackend,
  type LockEvent,
} from '@app/distributed-lock';
import {
  postgresBackend,
  postgresMigrationSql,
  type PostgresBackendOptions,
} from '@app/distributed-lock/postgres';
import { lockStatements } from '@app/distributed-lock/postgres/postgres.sql';
import { aborted, delay, eventually, lockApp, type LockApp } from './support/lock-app';
import { freePort } from './support/redis-fleet';
import { PostgresServer } from './support/postgres-server';
import { reportRow } from './support/reliability-report';

/**
 * The PostgreSQL backend beyond the shared contract (test/contract/postgres.contract.e2e-spec.ts):
 * its table and schema handling, fencing tokens across crashes, leases across restarts and pauses,
 * exhausted pools, blocked statements, an unreachable server at bootstrap, NOTIFY hand-off and the
 * sweep. Every server is a throwaway one the harness starts on a free port.
 */

/** Settles `promise` and says how long it took (ms) and how it ended. */
async function timed<T>(promise: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const start = performance.now();
  try {
    const value = await promise;
    return { ms: performance.now() - start, value };
  } catch (error) {
    return { ms: performance.now() - start, error };
  }
}

function expectUnavailable(error: unknown): void {
  expect(error).toBeInstanceOf(LockUnavailableError);
  expect((error as Error).message).not.toMatch(/redis/i);
}

describe('PostgreSQL backend', () => {
  let server: PostgresServer;
  let admin: Pool;
  const apps: LockApp[] = [];
  const closers: Array<() => Promise<unknown>> = [];

  async function replica(options: Partial<PostgresBackendOptions> = {}): Promise<LockApp> {
    const app = await lockApp({
      backend: postgresBackend({
        ...(options.pool ? {} : { connectionString: server.connectionString }),
        ...options,
      }),
    });
    apps.push(app);
    return app;
  }

  /** A backend used directly (not through a module); closed after the test. */
  function backend(options: Partial<PostgresBackendOptions> = {}): LockBackend {
    const b = postgresBackend({
      ...(options.pool ? {} : { connectionString: server.connectionString }),
      ...options,
    });
    closers.push(() => b.close());
    return b;
  }

  function userPool(max: number, target: PostgresServer = server): Pool {
    const pool = new Pool({ connectionString: target.connectionString, max });
    pool.on('error', () => undefined);
    closers.push(() => pool.end());
    return pool;
  }

  beforeAll(async () => {
    server = await PostgresServer.start();
    admin = new Pool({ connectionString: server.connectionString, max: 3 });
    admin.on('error', () => undefined);
  });
  afterEach(async () => {
    server.resume();
    await Promise.all(apps.splice(0).map((a) => a.close()));
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
  });
  afterAll(async () => {
    await admin.end();
    await server.stop();
  });

  describe('table', () => {
    it('is created on first use, once, when many replicas start at once, in a schema with any name', async () => {
      const schema = 'lock "schema"';
      await admin.query(`CREATE SCHEMA "lock ""schema"""`);
      const table = 'locks; DROP TABLE x';
      const backends = Array.from({ length: 6 }, () => backend({ schema, table }));
      const locks = await Promise.all(backends.map((b, i) => b.acquire([`first-use-${i}`], 5_000)));
      expect(new Set(locks.map((l) => l.fencingToken)).size).toBe(6);
      const { rows } = await admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "lock ""schema"""."locks; DROP TABLE x"`,
      );
      expect(rows[0].n).toBe(6);
      await Promise.all(backends.map((b, i) => b.release(locks[i], [`first-use-${i}`])));
    });

    it('with createTable: false fails closed naming the migration, until the migration has run', async () => {
      const { locks } = await replica({ table: 'migrated_later', createTable: false });
      const before = await timed(locks.acquire('migrated'));
      expectUnavailable(before.error);
      expect((before.error as Error).message).toContain('postgresMigrationSql()');
      expect((before.error as Error).message).toContain('"public"."migrated_later"');

      await admin.query(postgresMigrationSql({ table: 'migrated_later' }));
      const lock = await locks.acquire('migrated');
      expect(lock.fencingToken).toBeGreaterThan(0);
      await lock.release();
    });

    it('keeps a released row, unowned, and sweeps expired claims and long-released locks', async () => {
      const b = backend({ table: 'swept' });
      const lock = await b.acquire(['kept'], 5_000);
      await b.release(lock, ['kept']);
      expect(await b.claim('claim:old', 50)).toBe(true);
      expect(await b.claim('claim:live', 60_000)).toBe(true);
      const old = await b.acquire(['released-long-ago'], 5_000);
      await b.release(old, ['released-long-ago']);
      await admin.query(
        `UPDATE swept SET expires_at = now() - interval '11 minutes' WHERE key = 'released-long-ago'`,
      );
      const row = await admin.query<{ owner: string | null }>(
        `SELECT owner FROM swept WHERE key = 'kept'`,
      );
      expect(row.rows).toEqual([{ owner: null }]);

      await delay(80);
      const { sweep } = lockStatements({ schema: 'public', table: 'swept' }, undefined);
      await admin.query(sweep);
      const { rows } = await admin.query<{ key: string }>('SELECT key FROM swept ORDER BY key');
      expect(rows.map((r) => r.key)).toEqual(['claim:live', 'kept']);
    });
  });

  describe('locks', () => {
    it('hands a hot key to one holder at a time, with tokens increasing in the order they held it', async () => {
      const replicas = await Promise.all([replica(), replica(), replica()]);
      const tokens: number[] = [];
      let inside = 0;
      let overlaps = 0;
      await Promise.all(
        replicas.flatMap(({ locks }) =>
          Array.from({ length: 4 }, async () => {
            for (let i = 0; i < 8; i += 1) {
              await locks.runExclusive(
                'hot',
                async (lock) => {
                  inside += 1;
                  if (inside > 1) overlaps += 1;
                  tokens.push(lock.fencingToken);
                  await delay(1);
                  inside -= 1;
                },
                { wait: 20_000, retry: { delay: 5, maxDelay: 20 } },
              );
            }
          }),
        ),
      );
      expect(overlaps).toBe(0);
      expect(tokens).toHaveLength(96);
      for (let i = 1; i < tokens.length; i += 1) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);
    });

    it('takes overlapping key sets all or none across replicas: no overlap, no deadlock, nothing left behind', async () => {
      const replicas = await Promise.all([replica(), replica(), replica()]);
      const keys = ['mk:a', 'mk:b', 'mk:c', 'mk:d'];
      const holders = new Map<string, number>();
      let overlaps = 0;
      let granted = 0;
      const failures: unknown[] = [];
      let seed = 7;
      const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
      await Promise.all(
        replicas.flatMap(({ locks }) =>
          Array.from({ length: 3 }, async () => {
            for (let i = 0; i < 40; i += 1) {
              const set = keys.filter(() => random() < 0.5);
              if (set.length === 0) continue;
              try {
                const lock = await locks.tryAcquire(set.reverse(), { ttl: 5_000 });
                if (!lock) continue;
                granted += 1;
                for (const k of set) {
                  if (holders.has(k)) overlaps += 1;
                  holders.set(k, lock.fencingToken);
                }
                await delay(1);
                for (const k of set) holders.delete(k);
                await lock.release();
              } catch (error) {
                failures.push(error);
              }
            }
          }),
        ),
      );
      expect(failures).toEqual([]);
      expect(overlaps).toBe(0);
      expect(granted).toBeGreaterThan(20);
      // Partial grants that slipped through a race were undone (in the background).
      const [{ locks }] = replicas;
      expect(
        await eventually(async () => {
          const held = await Promise.all(keys.map((k) => locks.isLocked(k)));
          return held.every((h) => !h);
        }, 2_000),
      ).toBe(true);
    });

    it('claims a tick once, keeps the claim until it expires, and never releases it early', async () => {
      const [a, b] = [backend(), backend()];
      const results = await Promise.all([a.claim('tick:1', 400), b.claim('tick:1', 400)]);
      expect(results.sort()).toEqual([false, true]);
      expect(await a.isLocked('tick:1')).toBe(true);
      await delay(450);
      expect(await a.isLocked('tick:1')).toBe(false);
      expect(await b.claim('tick:1', 400)).toBe(true);
    });

    it('refuses keys PostgreSQL cannot store, before any I/O', async () => {
      const { locks } = await replica();
      await expect(locks.acquire('nul\0key')).rejects.toBeInstanceOf(InvalidLockArgumentError);
      await expect(locks.acquire(['ok', '\uD800'])).rejects.toMatchObject({
        name: 'InvalidLockArgumentError',
        field: 'key[1]',
      });
      await expect(locks.acquire('é'.repeat(1_001))).rejects.toBeInstanceOf(
        InvalidLockArgumentError,
      );
    });

    it('reports health as one instance that is up or down', async () => {
      const b = backend();
      expect(await b.health()).toEqual({ instances: 1, up: 1, quorum: 1 });
      server.pause();
      const down = await timed(b.health());
      expect(down.value).toEqual({ instances: 1, up: 0, quorum: 1 });
      expect(down.ms).toBeLessThan(4_000);
    });
  });

  describe('durability', () => {
    it('keeps fencing tokens increasing and leases, extensions and claims across crashes (kill -9 right after), even with synchronous_commit off', async () => {
      const lossy = await PostgresServer.start({ settings: { synchronous_commit: 'off' } });
      closers.push(() => lossy.stop());
      const b = postgresBackend({ connectionString: lossy.connectionString, timeout: 2_000 });
      closers.push(() => b.close());
      // The table and sequence must exist durably before the first crash.
      await b.acquire(['setup'], 1_000);
      const setup = new Pool({ connectionString: lossy.connectionString, max: 1 });
      await setup.query('CHECKPOINT');
      await setup.end();

      let highest = 0;
      for (let round = 0; round < 4; round += 1) {
        const lock = await b.acquire([`crash-${round}`], 60_000);
        expect(lock.fencingToken).toBeGreaterThan(highest);
        highest = lock.fencingToken;
        await lossy.kill();
        await lossy.start();
        const after = await b.acquire([`crash-${round}`, 'other'], 1_000).catch((e: unknown) => e);
        // The lease itself survived the crash too: the key is still held.
        expect(after).toBeInstanceOf(LockBusyError);
        const next = await b.acquire([`after-${round}`], 1_000);
        expect(next.fencingToken).toBeGreaterThan(highest);
        highest = next.fencingToken;
      }

      // Extensions and tick claims are as durable as grants: a lease never shrinks back after a crash.
      const short = await b.acquire(['extended'], 1_000);
      await b.extend(short, ['extended'], 60_000);
      expect(await b.claim('claimed-tick', 60_000)).toBe(true);
      await lossy.kill();
      await lossy.start();
      await delay(1_100);
      expect(await b.isLocked('extended')).toBe(true);
      expect(await b.claim('claimed-tick', 60_000)).toBe(false);
    });

    it('keeps a lease across a server restart: nobody else enters until its holder releases it', async () => {
      const [a, b] = await Promise.all([replica(), replica()]);
      const lock = await a.locks.acquire('restart-lease', { ttl: 20_000 });
      await server.kill();
      expectUnavailable((await timed(b.locks.tryAcquire('restart-lease'))).error);
      await server.start();
      await expect(b.locks.tryAcquire('restart-lease')).resolves.toBeNull();
      await lock.release();
      const next = await b.locks.acquire('restart-lease');
      expect(next.fencingToken).toBeGreaterThan(lock.fencingToken);
      await next.release();
    });
  });

  describe('faults', () => {
    it('server paused mid-hold: the signal aborts, nobody enters before the lease ends, then the key moves on', async () => {
      const [a, b] = await Promise.all([replica(), replica()]);
      const events: LockEvent[] = [];
      a.locks.events.subscribe((e) => events.push(e));
      let held: Lock | undefined;
      let abortedAt = 0;
      const work = a.locks.runExclusive(
        'paused-holder',
        async (lock) => {
          held = lock;
          server.pause();
          await aborted(lock.signal, 5_000);
          abortedAt = performance.now();
          return lock.signal.reason as unknown;
        },
        { ttl: 1_500 },
      );
      const reason = await work;
      expect(reason).toBeInstanceOf(LockLostError);
      expect(events.filter((e) => e.type === 'lost')).toMatchObject([{ reason: 'expired' }]);
      // While paused nobody gets it: calls fail closed in about a second.
      const during = await timed(b.locks.tryAcquire('paused-holder'));
      expectUnavailable(during.error);
      expect(during.ms).toBeGreaterThan(700);
      expect(during.ms).toBeLessThan(5_000);

      server.resume();
      const next = await b.locks.acquire('paused-holder', { wait: 5_000 });
      expect(performance.now()).toBeGreaterThanOrEqual(abortedAt);
      expect(next.fencingToken).toBeGreaterThan(held!.fencingToken);
      await next.release();
    });

    it('server killed mid-hold: the signal aborts; after the restart the key is free only once the lease ended', async () => {
      const [a, b] = await Promise.all([replica(), replica()]);
      const lock = await a.locks.acquire('killed-holder', { ttl: 1_500 });
      const granted = performance.now();
      await server.kill();
      await expect(lock.extend()).rejects.toBeInstanceOf(LockUnavailableError);
      expect(await aborted(lock.signal, 3_000)).toBeInstanceOf(LockLostError);
      await server.start();
      const next = await b.locks.acquire('killed-holder', { wait: 5_000 });
      expect(performance.now() - granted).toBeGreaterThanOrEqual(1_400);
      expect(next.fencingToken).toBeGreaterThan(lock.fencingToken);
      await expect(lock.release()).rejects.toBeInstanceOf(LockLostError);
      expect(await b.locks.isLocked('killed-holder')).toBe(true);
      await next.release();
    });

    it('an exhausted user pool fails closed in about a second (no hang), and recovers when a client is free', async () => {
      const pool = userPool(1);
      const { locks, close } = await replica({ pool });
      const hog: PoolClient = await pool.connect();
      const exhausted = await timed(locks.acquire('pool-exhausted'));
      expectUnavailable(exhausted.error);
      expect(exhausted.ms).toBeGreaterThan(800);
      expect(exhausted.ms).toBeLessThan(4_000);
      hog.release();
      const lock = await locks.acquire('pool-exhausted');
      await lock.release();
      expect(await eventually(() => pool.waitingCount === 0, 2_000)).toBe(true);
      await close();
      apps.pop();
      // Never closed by the backend.
      await expect(pool.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
    });

    it.each([
      ['our pool (server statement_timeout)', false],
      ['a user pool (client query timeout)', true],
    ])(
      'a statement blocked on a row lock fails closed in about a second on %s, and leaves nothing behind',
      async (_label, withUserPool) => {
        const key = `blocked-${String(withUserPool)}`;
        const { locks } = await replica(withUserPool ? { pool: userPool(4) } : {});
        const other = await replica();
        await (await locks.acquire(key)).release();
        const blocker = await admin.connect();
        try {
          await blocker.query('BEGIN');
          await blocker.query('SELECT * FROM distributed_locks WHERE key = $1 FOR UPDATE', [key]);
          const blocked = await timed(locks.acquire(key));
          expectUnavailable(blocked.error);
          expect(blocked.ms).toBeLessThan(4_000);
          await blocker.query('COMMIT');
        } finally {
          blocker.release();
        }
        // Whatever the abandoned statement did once unblocked is undone: the key is free again.
        expect(await eventually(async () => !(await other.locks.isLocked(key)), 3_000)).toBe(true);
        const lock = await other.locks.acquire(key);
        await lock.release();
      },
    );

    it('a tick claim that timed out and commits later is undone, so the tick is not lost (a user pool)', async () => {
      const key = 'blocked-claim:tick:1';
      const store = backend({ pool: userPool(4) });
      await store.connect({ identity: 'test' }); // the table exists before it is locked
      const blocker = await admin.connect();
      try {
        await blocker.query('BEGIN');
        await blocker.query('LOCK TABLE distributed_locks IN ACCESS EXCLUSIVE MODE');
        const blocked = await timed(store.claim(key, 60_000));
        expectUnavailable(blocked.error);
        expect(blocked.ms).toBeLessThan(4_000);
        await delay(1_000); // the table stays locked for ~2 s in all
        await blocker.query('COMMIT');
      } finally {
        blocker.release();
      }
      // The abandoned INSERT ran once unblocked; the claim it made for nobody is given back.
      const undone = await eventually(async () => !(await store.isLocked(key)), 3_000);
      reportRow({
        scenario: 'PostgreSQL: tick claim that timed out, then committed',
        operations: '1 tick claim',
        faults: 'the lock table locked for ~2 s (a user pool: no server-side statement timeout)',
        violations: undone ? 0 : 1,
        notes: 'LockUnavailableError after ~1 s; the late commit is undone by the orphan reaper',
      });
      expect(undone).toBe(true);
      expect(await store.claim(key, 60_000)).toBe(true);
    });

    it('unreachable at bootstrap: the app starts, calls fail closed in about a second, and work once it is back', async () => {
      const late = await PostgresServer.start();
      closers.push(() => late.stop());
      late.pause();
      const booting = await timed(
        lockApp({ backend: postgresBackend({ connectionString: late.connectionString }) }),
      );
      expect(booting.error).toBeUndefined();
      const app = booting.value!;
      apps.push(app);
      expect(booting.ms).toBeLessThan(5_000);
      const calls: Array<() => Promise<unknown>> = [
        () => app.locks.acquire('late'),
        () => app.locks.isLocked('late'),
      ];
      for (const call of calls) {
        const result = await timed(call());
        expectUnavailable(result.error);
        expect(result.ms).toBeGreaterThan(700);
        expect(result.ms).toBeLessThan(4_000);
      }
      late.resume();
      const lock = await app.locks.acquire('late');
      expect(lock.fencingToken).toBeGreaterThan(0);
      await lock.release();

      // Nothing listening on the port at all: refused at once.
      const nobody = await lockApp({
        backend: postgresBackend({
          connectionString: `postgresql://postgres@127.0.0.1:${await freePort()}/postgres`,
        }),
      });
      apps.push(nobody);
      const refused = await timed(nobody.locks.tryAcquire('nobody'));
      expectUnavailable(refused.error);
      expect(refused.ms).toBeLessThan(3_000);
    });
  });

  describe('release announcements (LISTEN/NOTIFY)', () => {
    it('wakes a waiter in another backend as soon as the holder releases, else at the timeout', async () => {
      const [a, b] = [backend(), backend()];
      const lock = await a.acquire(['notify'], 10_000);
      const quiet = await timed(b.waitForRelease!(['notify'], 300));
      expect(quiet.ms).toBeGreaterThanOrEqual(290);

      const waiting = timed(b.waitForRelease!(['unrelated', 'notify'], 5_000));
      // The waiter's LISTEN is in place (its connection's last statement) before the release.
      const listening = async () =>
        (
          await admin.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN %'`,
          )
        ).rows[0].n;
      expect(await eventually(async () => (await listening()) > 0, 5_000)).toBe(true);
      const released = performance.now();
      await a.release(lock, ['notify']);
      const woke = await waiting;
      // Woken by the announcement, long before the 5 s timeout (a poll-only wait would sleep on).
      expect(woke.ms).toBeLessThan(2_500);
      expect(performance.now() - released).toBeLessThan(1_500);
    });

    it('with a user pool, holds one of its clients while waiting and hands it back on close', async () => {
      const pool = userPool(3);
      const b = postgresBackend({ pool });
      const waiting = b.waitForRelease!(['held-client'], 2_000);
      expect(await eventually(() => pool.totalCount - pool.idleCount === 1, 1_000)).toBe(true);
      await b.close();
      await waiting; // close wakes every waiter
      expect(pool.totalCount - pool.idleCount).toBe(0);
      await expect(pool.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
    });

    it('announces nothing and waits out the timeout with notify: false', async () => {
      const [a, b] = [backend({ notify: false }), backend({ notify: false })];
      const lock = await a.acquire(['silent'], 10_000);
      const waiting = timed(b.waitForRelease!(['silent'], 400));
      await a.release(lock, ['silent']);
      expect((await waiting).ms).toBeGreaterThanOrEqual(390);
    });
  });
});
