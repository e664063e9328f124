import type { Leadership } from '@app/distributed-lock';
import { etcdBackend } from '@app/distributed-lock/etcd';
import { postgresBackend } from '@app/distributed-lock/postgres';
import { EtcdCluster } from './support/etcd-cluster';
import { delay, lockApp, type LockApp } from './support/lock-app';
import { PostgresServer } from './support/postgres-server';

/**
 * Review of leader election (issue 17) under store faults on PostgreSQL and etcd: a leader and a
 * rival campaigning in a loop in one process, so the moment the rival is elected we can read the
 * old leader's signal directly (two leaders = the rival elected while the old signal is not aborted).
 */
describe('leader election review: store faults', () => {
  const apps: LockApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close().catch(() => undefined)));
  });

  /** Campaigns with `app` until elected or `stop()`; records whether `other` still led then. */
  function rival(app: LockApp, name: string, ttl: number, other: () => Leadership | undefined) {
    let stopped = false;
    const result: { won?: Leadership; otherAlive?: boolean; failures: number; at?: number } = {
      failures: 0,
    };
    const done = (async () => {
      while (!stopped && !result.won) {
        try {
          const l = await app.locks.lead(name, { wait: 200, ttl });
          const o = other();
          result.otherAlive = o !== undefined && !o.signal.aborted;
          result.at = performance.now();
          result.won = l;
        } catch {
          result.failures += 1;
          await delay(50);
        }
      }
    })();
    return {
      result,
      stop: async () => {
        stopped = true;
        await done;
      },
    };
  }

  describe('PostgreSQL', () => {
    let server: PostgresServer;
    beforeAll(async () => {
      server = await PostgresServer.start();
    });
    afterAll(async () => {
      await server.stop();
    });
    const pg = () =>
      lockApp({ backend: postgresBackend({ connectionString: server.connectionString }) }).then(
        (a) => (apps.push(a), a),
      );

    it('paused past the TTL: the leader steps down before a rival leads; terms increase', async () => {
      const a = await pg();
      const b = await pg();
      const ttl = 2_000;
      const l = await a.locks.lead('pg-pause', { ttl });
      const r = rival(b, 'pg-pause', ttl, () => l);
      server.pause();
      const t0 = performance.now();
      let lostAfter = -1;
      try {
        for (let i = 0; i < 200 && !l.signal.aborted; i += 1) await delay(20);
        lostAfter = performance.now() - t0;
        await delay(ttl);
      } finally {
        server.resume();
      }
      for (let i = 0; i < 300 && !r.result.won; i += 1) await delay(20);
      await r.stop();
      console.log(
        `pg pause: leader lost after ${lostAfter.toFixed(0)} ms (ttl ${ttl}, reason ${String(l.signal.reason)}); rival led ${(r.result.at! - t0).toFixed(0)} ms after pause, old still leading: ${r.result.otherAlive}; terms ${l.term} -> ${r.result.won?.term}`,
      );
      expect(lostAfter).toBeGreaterThan(0);
      expect(lostAfter).toBeLessThan(ttl);
      expect(r.result.otherAlive).toBe(false);
      expect(r.result.won!.term).toBeGreaterThan(l.term);
      await r.result.won!.resign();
    });

    it('crash-restarted (SIGKILL, same data): the leader steps down, terms still increase', async () => {
      const a = await pg();
      const ttl = 2_000;
      const l = await a.locks.lead('pg-crash', { ttl });
      await server.kill();
      const t0 = performance.now();
      for (let i = 0; i < 200 && !l.signal.aborted; i += 1) await delay(20);
      const lostAfter = performance.now() - t0;
      await server.start();
      let next: Leadership | undefined;
      let failures = 0;
      const up = performance.now();
      while (!next && performance.now() - up < 20_000) {
        next = await a.locks.lead('pg-crash', { wait: ttl * 2, ttl }).catch(() => {
          failures += 1;
          return undefined;
        });
        if (!next) await delay(100);
      }
      console.log(
        `pg crash: lost after ${lostAfter.toFixed(0)} ms; led again ${(performance.now() - up).toFixed(0)} ms after restart (${failures} failed calls); terms ${l.term} -> ${next?.term}`,
      );
      expect(l.signal.aborted).toBe(true);
      expect(next!.term).toBeGreaterThan(l.term);
      await next!.resign();
    });
  });

  describe('etcd (3 members)', () => {
    let cluster: EtcdCluster;
    beforeAll(async () => {
      cluster = await EtcdCluster.start(3);
    });
    afterAll(async () => {
      await cluster.stop();
    });
    const etcd = () =>
      lockApp({ backend: etcdBackend({ hosts: cluster.hosts, commandTimeout: 500 }) }).then(
        (a) => (apps.push(a), a),
      );

    it('the etcd leader member killed: no two leaders; terms increase', async () => {
      const a = await etcd();
      const b = await etcd();
      const ttl = 3_000;
      const l = await a.locks.lead('etcd-kill', { ttl });
      const r = rival(b, 'etcd-kill', ttl, () => l);
      const member = await cluster.leader();
      await member.kill();
      const t0 = performance.now();
      await delay(ttl * 2);
      const keptAfterKill = !l.signal.aborted;
      if (!l.signal.aborted) await l.resign();
      for (let i = 0; i < 300 && !r.result.won; i += 1) await delay(20);
      await r.stop();
      member.start();
      console.log(
        `etcd leader member killed: old leadership kept ${keptAfterKill} (reason ${String(l.signal.reason)}); rival led ${(r.result.at! - t0).toFixed(0)} ms after kill, old still leading then: ${r.result.otherAlive}; rival failures ${r.result.failures}; terms ${l.term} -> ${r.result.won?.term}`,
      );
      expect(r.result.otherAlive).toBe(false);
      expect(r.result.won!.term).toBeGreaterThan(l.term);
      await r.result.won!.resign();
      await cluster.healthy();
    });
  });
});
