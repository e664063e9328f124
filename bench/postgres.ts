/**
 * `npm run bench:postgres`: the PostgreSQL backend beside the Redis backend (1 instance) and beside a
 * raw-SQL floor (the backend's own statements sent by hand through `pg`), interleaved in one run;
 * then lock hand-off latency with LISTEN/NOTIFY, with backoff polling only, on Redis (pub/sub), and a
 * hand-written LISTEN/NOTIFY floor. Rewrites the generated section of docs/POSTGRES.md.
 * Not a test: numbers depend on the machine; ratios measured side by side are what we compare.
 * Bounded: about a minute with the defaults (BENCH_ROUNDS, BENCH_WINDOW_MS, BENCH_HANDOFFS).
 */
import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Pool } from 'pg';
import { format, resolveConfig } from 'prettier';
import { DistributedLockModule, LockService } from '../libs/distributed-lock/src';
import { postgresBackend } from '../libs/distributed-lock/src/postgres';
import { lockStatements } from '../libs/distributed-lock/src/postgres/postgres.sql';
import { PostgresServer } from '../test/support/postgres-server';
import { RedisFleet } from '../test/support/redis-fleet';
import { interleave, quantile, type BenchCase, type CaseResult } from './harness';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WINDOW_MS = Number(process.env.BENCH_WINDOW_MS ?? 1_000);
const HANDOFFS = Number(process.env.BENCH_HANDOFFS ?? 100);
const TTL = 10_000;
const HOLD_MS = 5;
const FLOOR_POLL_MS = 100;
const DOC = join(__dirname, '..', 'docs', 'POSTGRES.md');
const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

const PG_SERVICE = 'LockService on PostgreSQL';
const PG_QUIET = 'LockService on PostgreSQL, `notify: false`';
const PG_FLOOR = 'raw SQL floor (the same two statements by hand)';
const REDIS_SERVICE = 'LockService on Redis, 1 instance';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const owner = () => randomBytes(16).toString('hex');

async function moduleFor(options: Parameters<typeof DistributedLockModule.forRoot>[0]) {
  const app = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ logger: false, ...options })],
  }).compile();
  await app.init();
  return { locks: app.get(LockService), close: () => app.close() };
}

/** Acquire + release of a fresh key per operation (no contention), at concurrency 1 and 16. */
async function acquireRelease(pgUrl: string, redisUrl: string): Promise<CaseResult[]> {
  const pg = await moduleFor({ backend: postgresBackend({ connectionString: pgUrl }) });
  const quiet = await moduleFor({
    backend: postgresBackend({ connectionString: pgUrl, notify: false }),
  });
  const redis = await moduleFor({ connections: [redisUrl] });
  // Same pool size as the backend's own; the statements exactly as the backend sends them.
  const pool = new Pool({ connectionString: pgUrl, max: 10 });
  const sql = lockStatements({ schema: 'public', table: 'distributed_locks' }, 'dlock:floor');
  const cases: BenchCase[] = [];
  for (const concurrency of [1, 16]) {
    const group = `concurrency ${concurrency}`;
    cases.push(
      {
        name: PG_SERVICE,
        group,
        concurrency,
        op: async (w, i) =>
          (await pg.locks.acquire(`b:svc:${w}:${i % 1000}`, { ttl: TTL })).release(),
      },
      {
        name: PG_QUIET,
        group,
        concurrency,
        op: async (w, i) =>
          (await quiet.locks.acquire(`b:quiet:${w}:${i % 1000}`, { ttl: TTL })).release(),
      },
      {
        name: PG_FLOOR,
        group,
        concurrency,
        op: async (w, i) => {
          const key = `b:floor:${w}:${i % 1000}`;
          const me = owner();
          const { rows } = await pool.query(sql.acquireOne, [key, me, TTL]);
          if (rows.length !== 1) throw new Error('floor: busy');
          await pool.query(sql.release, [[key], me]);
        },
      },
      {
        name: REDIS_SERVICE,
        group,
        concurrency,
        op: async (w, i) =>
          (await redis.locks.acquire(`b:redis:${w}:${i % 1000}`, { ttl: TTL })).release(),
      },
    );
  }
  try {
    return await interleave(cases, ROUNDS, WINDOW_MS);
  } finally {
    await pg.close();
    await quiet.close();
    await redis.close();
    await pool.end();
  }
}

/** One contender for hand-off: `hold` takes the key, `wait` waits up to 5 s for it. */
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
  const hold = async (key: string, locks: LockService, wait = 0) => {
    const lock = await locks.acquire(key, { ttl: 5_000, wait });
    return () => lock.release();
  };
  return {
    label,
    hold: (key) => hold(key, holder.locks),
    wait: (key) => hold(key, waiter.locks, 5_000),
    close: () => Promise.all([holder.close(), waiter.close()]),
  };
}

/**
 * The hand-written floor: the backend's acquire and release statements (release NOTIFYs), a waiter
 * that LISTENs on its own connection before its first attempt, retries on every notification and
 * polls every FLOOR_POLL_MS in case one was missed.
 */
async function floorContender(pgUrl: string): Promise<Contender> {
  const channel = 'dlock:floor';
  const sql = lockStatements({ schema: 'public', table: 'distributed_locks' }, channel);
  const pool = new Pool({ connectionString: pgUrl, max: 4 });
  const listener = new Client({ connectionString: pgUrl });
  await listener.connect();
  await listener.query(`LISTEN "${channel}"`);
  const wakers = new Set<() => void>();
  listener.on('notification', () => wakers.forEach((wake) => wake()));
  const take = async (key: string) => {
    const me = owner();
    const { rows } = await pool.query(sql.acquireOne, [key, me, 5_000]);
    return rows.length === 1 ? () => pool.query(sql.release, [[key], me]) : undefined;
  };
  return {
    label: 'raw LISTEN/NOTIFY floor',
    hold: async (key) => (await take(key))!,
    wait: async (key) => {
      const deadline = performance.now() + 5_000;
      let wake: (() => void) | undefined;
      const waker = () => wake?.();
      wakers.add(waker);
      try {
        for (;;) {
          const release = await take(key);
          if (release) return release;
          if (performance.now() > deadline) throw new Error('floor: waited 5 s');
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, FLOOR_POLL_MS);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
      } finally {
        wakers.delete(waker);
      }
    },
    close: async () => {
      await listener.end();
      await pool.end();
    },
  };
}

/** Hand-off samples (ms from the holder's release resolving to the waiter's grant), interleaved. */
async function handoff(contenders: Contender[]): Promise<Map<string, number[]>> {
  const samples = new Map(contenders.map((c) => [c.label, [] as number[]]));
  const warmup = 3;
  for (let round = 0; round < warmup + HANDOFFS; round += 1) {
    for (let k = 0; k < contenders.length; k += 1) {
      const c = contenders[(k + round) % contenders.length];
      const key = `handoff:${(k + round) % contenders.length}`;
      const release = await c.hold(key);
      const waiting = c.wait(key);
      await sleep(HOLD_MS);
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
    const floor = rows.find((r) => r.name === PG_FLOOR)!;
    const redis = rows.find((r) => r.name === REDIS_SERVICE)!;
    lines.push(
      `#### ${group}`,
      '',
      '| case | ops/s | p50 ms | p99 ms | vs floor | vs Redis |',
      '|---|---:|---:|---:|---:|---:|',
      ...rows.map(
        (r) =>
          `| ${r.name} | ${Math.round(rate(r)).toLocaleString('en-US')} | ${quantile(r.latencies, 0.5).toFixed(2)} | ${quantile(r.latencies, 0.99).toFixed(2)} | ${(rate(r) / rate(floor)).toFixed(2)}× | ${(rate(r) / rate(redis)).toFixed(2)}× |`,
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
  const [server, fleet] = await Promise.all([PostgresServer.start(), RedisFleet.start(1)]);
  let acquire: CaseResult[] = [];
  let handoffs = new Map<string, number[]>();
  let major = '';
  try {
    const version = new Pool({ connectionString: server.connectionString, max: 1 });
    major = (await version.query<{ v: string }>("SELECT current_setting('server_version') AS v"))
      .rows[0].v;
    await version.end();
    acquire = await acquireRelease(server.connectionString, fleet.urls[0]);
    const contenders = [
      await serviceContender('LockService on PostgreSQL (LISTEN/NOTIFY)', {
        backend: postgresBackend({ connectionString: server.connectionString }),
      }),
      await serviceContender('LockService on PostgreSQL, `notify: false` (backoff polling)', {
        backend: postgresBackend({ connectionString: server.connectionString, notify: false }),
      }),
      await serviceContender('LockService on Redis, 1 instance', { connections: fleet.urls }),
      await floorContender(server.connectionString),
    ];
    try {
      handoffs = await handoff(contenders);
    } finally {
      await Promise.all(contenders.map((c) => c.close()));
    }
  } finally {
    await fleet.stop();
    await server.stop();
  }
  const section = [
    START,
    '',
    '## Benchmarks',
    '',
    `Generated by \`npm run bench:postgres\` (bench/postgres.ts) on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, PostgreSQL ${major} and redis-server on loopback, 1-min load average ${load.toFixed(2)} at start, ${Math.round((performance.now() - started) / 1000)} s in all.`,
    '',
    '### Method',
    '',
    `A throwaway PostgreSQL server from the test harness (\`fsync=off\`, \`synchronous_commit=on\`: a commit costs a \`write()\`, not a disk flush, so these numbers leave out your disk) and one \`redis-server\`, both local. **Acquire + release**: every case in one process, interleaved by bench/harness.ts \`interleave\` (${ROUNDS} rounds × ${WINDOW_MS} ms per case after a warm-up, in a different shuffled order each round); one operation = acquire + release of a fresh key (no contention), TTL ${TTL} ms; concurrency = that many async workers. The floor sends the backend's own acquire statement and its release statement (with \`pg_notify\`) through a \`pg.Pool\` of the same size (10), with none of the library around them. **Hand-off**: the time from the holder's \`release()\` resolving to the waiter's \`acquire\` resolving, holder and waiter in two Nest apps (two backends, two pools) in one process; the waiter calls \`acquire(key, { wait: 5000 })\` ${HOLD_MS} ms before the release; ${HANDOFFS} samples per case after 3 warm-up samples, cases interleaved sample by sample. The floor waiter LISTENs on its own connection, retries on every notification and polls every ${FLOOR_POLL_MS} ms. A shared 2-core machine: compare the ratios, not the absolute figures.`,
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
