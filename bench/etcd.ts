/**
 * `npm run bench:etcd`: the etcd backend beside a floor (the backend's own lease grant and
 * transactions sent by hand through `etcd3`), and beside the Redis (1 instance) and PostgreSQL
 * backends, interleaved in one run; then lock hand-off latency on etcd (delete watch), a hand-written
 * watch floor, and Redis (pub/sub). Rewrites the generated section of docs/ETCD.md.
 * Not a test: numbers depend on the machine; ratios measured side by side are what we compare.
 * Bounded: well under a minute with the defaults (BENCH_ROUNDS, BENCH_WINDOW_MS, BENCH_HANDOFFS).
 */
import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { CompareResult, CompareTarget, Etcd3 } from 'etcd3';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { format, resolveConfig } from 'prettier';
import { DistributedLockModule, LockService } from '../libs/distributed-lock/src';
import { etcdBackend } from '../libs/distributed-lock/src/etcd';
import { postgresBackend } from '../libs/distributed-lock/src/postgres';
import { EtcdCluster } from '../test/support/etcd-cluster';
import { PostgresServer } from '../test/support/postgres-server';
import { RedisFleet } from '../test/support/redis-fleet';
import { interleave, quantile, type BenchCase, type CaseResult } from './harness';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WINDOW_MS = Number(process.env.BENCH_WINDOW_MS ?? 1_000);
const HANDOFFS = Number(process.env.BENCH_HANDOFFS ?? 50);
const TTL = 10_000;
const HOLD_MS = 5;
const DOC = join(__dirname, '..', 'docs', 'ETCD.md');
const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

const ETCD_SERVICE = 'LockService on etcd, 3 members';
const ETCD_FLOOR = 'etcd3 by hand (the same grant + transactions)';
const REDIS_SERVICE = 'LockService on Redis, 1 instance';
const PG_SERVICE = 'LockService on PostgreSQL';
const owner = () => randomBytes(16).toString('hex');
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function moduleFor(options: Parameters<typeof DistributedLockModule.forRoot>[0]) {
  const app = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ logger: false, ...options })],
  }).compile();
  await app.init();
  return { locks: app.get(LockService), close: () => app.close() };
}

/** The backend's acquire and release, by hand: grant, put-if-absent txn, delete-if-ours txn, revoke. */
async function floorLock(client: Etcd3, key: string): Promise<() => Promise<void>> {
  const k = Buffer.from(`floor:${key}`);
  const value = Buffer.from(owner());
  const { ID: lease } = await client.leaseClient.leaseGrant({ TTL: TTL / 1000, ID: 0 });
  const txn = await client.kv.txn({
    compare: [
      { key: k, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 },
    ],
    success: [{ request_put: { key: k, value, lease } }],
    failure: [{ request_range: { key: k } }],
  });
  if (!txn.succeeded) {
    void client.leaseClient.leaseRevoke({ ID: lease }).catch(() => undefined);
    throw new Error('floor: busy');
  }
  return async () => {
    await client.kv.txn({
      compare: [
        { key: k, target: CompareTarget.Value, result: CompareResult.Equal, value },
        { key: k, target: CompareTarget.Lease, result: CompareResult.Equal, lease },
        {
          key: k,
          target: CompareTarget.Create,
          result: CompareResult.Equal,
          create_revision: txn.header.revision,
        },
      ],
      success: [{ request_delete_range: { key: k } }],
    });
    void client.leaseClient.leaseRevoke({ ID: lease }).catch(() => undefined);
  };
}

async function acquireRelease(hosts: string[], redisUrl: string, pgUrl: string) {
  const etcd = await moduleFor({ backend: etcdBackend({ hosts }) });
  const redis = await moduleFor({ connections: [redisUrl] });
  const pg = await moduleFor({ backend: postgresBackend({ connectionString: pgUrl }) });
  const raw = new Etcd3({ hosts });
  const cases: BenchCase[] = [];
  for (const concurrency of [1, 16]) {
    const group = `concurrency ${concurrency}`;
    const service = (name: string, locks: LockService, tag: string): BenchCase => ({
      name,
      group,
      concurrency,
      op: async (w, i) => (await locks.acquire(`b:${tag}:${w}:${i}`, { ttl: TTL })).release(),
    });
    cases.push(
      service(ETCD_SERVICE, etcd.locks, 'etcd'),
      {
        name: ETCD_FLOOR,
        group,
        concurrency,
        op: async (w, i) => (await floorLock(raw, `${w}:${i}`))(),
      },
      service(REDIS_SERVICE, redis.locks, 'redis'),
      service(PG_SERVICE, pg.locks, 'pg'),
    );
  }
  try {
    return await interleave(cases, ROUNDS, WINDOW_MS);
  } finally {
    await Promise.all([etcd.close(), redis.close(), pg.close()]);
    raw.close();
  }
}

interface Contender {
  label: string;
  hold(key: string): Promise<() => Promise<unknown>>;
  wait(key: string): Promise<() => Promise<unknown>>;
  close(): Promise<unknown>;
}

async function serviceContender(
  label: string,
  options: Parameters<typeof DistributedLockModule.forRoot>[0],
): Promise<Contender> {
  const holder = await moduleFor(options);
  const waiter = await moduleFor(options);
  const take = async (key: string, locks: LockService, wait = 0) => {
    const lock = await locks.acquire(key, { ttl: 5_000, wait });
    return () => lock.release();
  };
  return {
    label,
    hold: (key) => take(key, holder.locks),
    wait: (key) => take(key, waiter.locks, 5_000),
    close: () => Promise.all([holder.close(), waiter.close()]),
  };
}

/** The floor: a waiter with its watch on the key's delete set up before the release, then the take. */
function watchFloor(hosts: string[]): Contender {
  const holder = new Etcd3({ hosts });
  const waiter = new Etcd3({ hosts });
  return {
    label: 'raw etcd3 delete watch floor',
    hold: (key) => floorLock(holder, key),
    wait: async (key) => {
      const deleted = new Promise<void>((resolve) => {
        void waiter
          .watch()
          .key(`floor:${key}`)
          .only('delete')
          .create()
          .then((w) => w.once('delete', () => void w.cancel().then(resolve, resolve)));
      });
      await deleted;
      return floorLock(waiter, key);
    },
    close: () => {
      holder.close();
      waiter.close();
      return Promise.resolve();
    },
  };
}

async function handoff(contenders: Contender[]): Promise<Map<string, number[]>> {
  const samples = new Map(contenders.map((c) => [c.label, [] as number[]]));
  const warmup = 3;
  for (let round = 0; round < warmup + HANDOFFS; round += 1) {
    for (let k = 0; k < contenders.length; k += 1) {
      const c = contenders[(k + round) % contenders.length];
      const key = `handoff:${k}:${round}`;
      const release = await c.hold(key);
      const waiting = c.wait(key);
      await sleep(HOLD_MS * 4);
      await release();
      const released = performance.now();
      const releaseNext = await waiting;
      const ms = performance.now() - released;
      await releaseNext();
      if (round >= warmup) samples.get(c.label)!.push(ms);
    }
  }
  return samples;
}

function acquireTable(results: CaseResult[]): string {
  const lines: string[] = [];
  for (const group of [...new Set(results.map((r) => r.group))]) {
    const rows = results.filter((r) => r.group === group);
    const rate = (r: CaseResult) => r.ops / r.seconds;
    const floor = rows.find((r) => r.name === ETCD_FLOOR)!;
    lines.push(
      `#### ${group}`,
      '',
      '| case | ops/s | p50 ms | p99 ms | vs etcd floor |',
      '|---|---:|---:|---:|---:|',
      ...rows.map(
        (r) =>
          `| ${r.name} | ${Math.round(rate(r)).toLocaleString('en-US')} | ${quantile(r.latencies, 0.5).toFixed(2)} | ${quantile(r.latencies, 0.99).toFixed(2)} | ${(rate(r) / rate(floor)).toFixed(2)}× |`,
      ),
      '',
    );
  }
  return lines.join('\n');
}

function handoffTable(samples: Map<string, number[]>): string {
  const fmt = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(0));
  return [
    '| case | n | p50 ms | p90 ms | p99 ms | max ms |',
    '|---|---:|---:|---:|---:|---:|',
    ...[...samples].map(
      ([label, s]) =>
        `| ${label} | ${s.length} | ${fmt(quantile(s, 0.5))} | ${fmt(quantile(s, 0.9))} | ${fmt(quantile(s, 0.99))} | ${fmt(Math.max(...s))} |`,
    ),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const started = performance.now();
  const load = loadavg()[0];
  const [cluster, fleet, server] = await Promise.all([
    EtcdCluster.start(3),
    RedisFleet.start(1),
    PostgresServer.start(),
  ]);
  let acquire: CaseResult[] = [];
  let handoffs = new Map<string, number[]>();
  try {
    acquire = await acquireRelease(cluster.hosts, fleet.urls[0], server.connectionString);
    const contenders = [
      await serviceContender('LockService on etcd (delete watch)', {
        backend: etcdBackend({ hosts: cluster.hosts }),
      }),
      watchFloor(cluster.hosts),
      await serviceContender('LockService on Redis, 1 instance (pub/sub)', {
        connections: fleet.urls,
      }),
    ];
    try {
      handoffs = await handoff(contenders);
    } finally {
      await Promise.all(contenders.map((c) => c.close()));
    }
  } finally {
    await Promise.all([cluster.stop(), fleet.stop(), server.stop()]);
  }
  const section = [
    START,
    '',
    '## Benchmarks',
    '',
    `Generated by \`npm run bench:etcd\` (bench/etcd.ts) on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, etcd 3.4 (3 members, the test harness's flags), redis-server and PostgreSQL on loopback, 1-min load average ${load.toFixed(2)} at start, ${Math.round((performance.now() - started) / 1000)} s in all.`,
    '',
    '### Method',
    '',
    `Servers from the test harness, all local, etcd's three members on one machine (every write is a raft round among three local processes plus an fsync of their WAL: these numbers include this machine's disk). **Acquire + release**: every case in one process, interleaved by bench/harness.ts \`interleave\` (${ROUNDS} rounds × ${WINDOW_MS} ms per case after a warm-up, in a different shuffled order each round); one operation = acquire + release of a fresh key (no contention), TTL ${TTL} ms. The floor sends what the backend sends (lease grant, put-if-absent transaction, delete-if-ours transaction, background revoke) through a plain \`etcd3\` client. **Hand-off**: from the holder's \`release()\` resolving to the waiter's grant; the waiter starts waiting ${HOLD_MS * 4} ms before the release; ${HANDOFFS} samples per case after 3 warm-up samples, interleaved. The floor waiter has its delete watch in place and then takes the lock by hand. A shared 2-core machine: compare the ratios, not the absolute figures.`,
    '',
    '### Acquire + release',
    '',
    acquireTable(acquire),
    '### Hand-off to a waiting acquisition',
    '',
    handoffTable(handoffs),
    END,
  ].join('\n');
  const doc = readFileSync(DOC, 'utf8');
  const at = doc.indexOf(START);
  const end = doc.indexOf(END);
  if (at < 0 || end < 0) throw new Error(`${DOC} has no ${START} … ${END} section`);
  const next = doc.slice(0, at) + section + doc.slice(end + END.length);
  const config = (await resolveConfig(DOC)) ?? {};
  writeFileSync(DOC, await format(next, { ...config, filepath: DOC }));
  console.log(section);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
