/**
 * `npm run bench:limits`: what a concurrency limit costs next to a mutex, side by side in one run
 * (issue 18), on 1 and 3 local Redis instances:
 * - acquire + release at `limit: 10` with 5 permits held by another replica, against acquire +
 *   release of a free mutex key (both one caller);
 * - 5 concurrent callers churning one `limit: 10` key, against 5 callers each on its own mutex key;
 * - hand-off: the time from a holder's `release()` of one permit (all 3 of `limit: 3` taken) to a
 *   waiting replica's `acquire` resolving, against the same for a mutex.
 * Writes the "Concurrency limits" section of docs/BENCHMARKS.md (between its markers; `npm run
 * bench` keeps it). Uses only the public API.
 */
import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DistributedLockModule, LockService, type Lock } from '../libs/distributed-lock/src';
import { RedisFleet } from '../test/support/redis-fleet';
import { interleave, quantile, type BenchCase } from './harness';

const ROUNDS = Number(process.env.LIMITS_ROUNDS ?? 3);
const WINDOW_MS = Number(process.env.LIMITS_WINDOW_MS ?? 1_000);
const HANDOFFS = Number(process.env.LIMITS_HANDOFFS ?? 200);
const TTL = 10_000;
export const START = '<!-- bench:limits start -->';
export const END = '<!-- bench:limits end -->';

async function replica(
  urls: string[],
): Promise<{ locks: LockService; close: () => Promise<void> }> {
  const app = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ connections: urls, logger: false })],
  }).compile();
  await app.init();
  return { locks: app.get(LockService), close: () => app.close() };
}

interface Row {
  instances: number;
  name: string;
  ops: number;
  p50: number;
  p99: number;
  vs: number;
}

async function throughput(urls: string[], instances: number): Promise<Row[]> {
  const a = await replica(urls);
  const b = await replica(urls);
  const held: Lock[] = [];
  for (let i = 0; i < 5; i += 1)
    held.push(await b.locks.acquire('held10', { limit: 10, ttl: 60_000 }));
  let seq = 0;
  const cases: BenchCase[] = [
    {
      name: 'mutex, free key, 1 caller',
      group: 'one',
      concurrency: 1,
      op: async () => (await a.locks.acquire(`m:${(seq += 1)}`, { ttl: TTL })).release(),
    },
    {
      name: 'limit 10, 5 permits held elsewhere, 1 caller',
      group: 'one',
      concurrency: 1,
      op: async () => (await a.locks.acquire('held10', { limit: 10, ttl: TTL })).release(),
    },
    {
      name: 'mutex, 5 callers on 5 keys',
      group: 'five',
      concurrency: 5,
      op: async (w) => (await a.locks.acquire(`m5:${w}`, { ttl: TTL })).release(),
    },
    {
      name: 'limit 10, 5 callers on one key',
      group: 'five',
      concurrency: 5,
      op: async () => (await a.locks.acquire('churn10', { limit: 10, ttl: TTL })).release(),
    },
  ];
  const results = await interleave(cases, ROUNDS, WINDOW_MS);
  for (const l of held) await l.release();
  await a.close();
  await b.close();
  return results.map((r) => {
    const base = results.find((x) => x.group === r.group)!;
    const ops = r.ops / r.seconds;
    return {
      instances,
      name: r.name,
      ops,
      p50: quantile(r.latencies, 0.5),
      p99: quantile(r.latencies, 0.99),
      vs: ops / (base.ops / base.seconds),
    };
  });
}

/** Hand-off of a freed permit (limit 3, all taken) or of a mutex to a waiter on another replica. */
async function handoff(urls: string[], limit: number): Promise<number[]> {
  const holder = await replica(urls);
  const waiter = await replica(urls);
  const samples: number[] = [];
  for (let i = 0; i < HANDOFFS; i += 1) {
    const key = `handoff:${limit}:${i}`;
    const held: Lock[] = [];
    for (let p = 0; p < limit; p += 1)
      held.push(await holder.locks.acquire(key, { limit, ttl: TTL }));
    const waiting = waiter.locks.acquire(key, { limit, ttl: TTL, wait: 5_000 });
    // Let the waiter find every permit busy and go to sleep on the release announcements.
    await new Promise((r) => setTimeout(r, 25));
    await held[0].release();
    const freed = performance.now();
    const got = await waiting;
    samples.push(performance.now() - freed);
    await got.release();
    for (const l of held.slice(1)) await l.release();
  }
  await holder.close();
  await waiter.close();
  return samples;
}

const f = (n: number, d = 2) => n.toFixed(d);

async function main(): Promise<void> {
  const rows: Row[] = [];
  const handoffs: Array<{ instances: number; what: string; s: number[] }> = [];
  for (const instances of [1, 3]) {
    const fleet = await RedisFleet.start(instances);
    try {
      rows.push(...(await throughput(fleet.urls, instances)));
      handoffs.push({ instances, what: 'mutex', s: await handoff(fleet.urls, 1) });
      handoffs.push({
        instances,
        what: 'limit 3, one permit freed',
        s: await handoff(fleet.urls, 3),
      });
    } finally {
      await fleet.stop();
    }
  }
  const section = [
    START,
    '## Concurrency limits',
    '',
    `Generated by \`npm run bench:limits\` on ${new Date().toISOString().slice(0, 10)} (${cpus().length} cores, Node ${process.version}). ` +
      `Two replicas (Nest apps) in one process on local \`redis-server\` instances; the cases of one instance count are interleaved (${ROUNDS} rounds × ${WINDOW_MS} ms after a warm-up), ` +
      'so the ratios compare like with like. "vs" is ops/s against the mutex row of the same group in this run. ' +
      'One operation = `acquire` + `release`. A limited acquisition is one script per instance that tries the permits in order and takes the first free one, so 5 held permits cost 5 failed `SET NX` inside that script, not 5 round trips.',
    '',
    '| instances | case | ops/s | p50 ms | p99 ms | vs mutex |',
    '|---:|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.instances} | ${r.name} | ${Math.round(r.ops).toLocaleString('en-US')} | ${f(r.p50)} | ${f(r.p99)} | ${f(r.vs)}× |`,
    ),
    '',
    `Hand-off (${HANDOFFS} samples each): from the holder's \`release()\` resolving to the waiting replica's \`acquire\` resolving; the waiter sleeps on the release announcement (pub/sub on every permit's key), retry delays are the module defaults.`,
    '',
    '| instances | what is handed off | p50 ms | p90 ms | p99 ms |',
    '|---:|---|---:|---:|---:|',
    ...handoffs.map(
      (h) =>
        `| ${h.instances} | ${h.what} | ${f(quantile(h.s, 0.5))} | ${f(quantile(h.s, 0.9))} | ${f(quantile(h.s, 0.99))} |`,
    ),
    END,
  ].join('\n');
  const file = join(__dirname, '..', 'docs', 'BENCHMARKS.md');
  const doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  const next =
    start >= 0 && end > start
      ? doc.slice(0, start) + section + doc.slice(end + END.length)
      : `${doc.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, next);
  console.log(section);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
