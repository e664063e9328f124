/**
 * `npm run bench:admin`: `LockAdmin.list()` on Redis (3 instances) with 100k held keys, beside a
 * probe that keeps acquiring and releasing a lock: the probe's latency alone, while `list` walks
 * every instance with SCAN, and while `KEYS` does the same walk in one blocking command (what `list`
 * must not do), interleaved in rounds in one run. Redis' own per-call time of SCAN and KEYS comes
 * from INFO commandstats. Rewrites the generated section of docs/OPERATIONS.md.
 * Not a test: numbers depend on the machine; ratios measured side by side are what we compare.
 */
import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { format, resolveConfig } from 'prettier';
import { DistributedLockModule, LockAdmin, LockService } from '../libs/distributed-lock/src';
import { newLockValue } from '../libs/distributed-lock/src/backend/lock-value';
import { RedisFleet } from '../test/support/redis-fleet';
import { quantile } from './harness';

const KEYS = Number(process.env.BENCH_ADMIN_KEYS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DOC = join(__dirname, '..', 'docs', 'OPERATIONS.md');
const START = '<!-- bench:start -->';
const END = '<!-- bench:end -->';

async function fill(client: Redis): Promise<void> {
  const value = newLockValue('bench-holder');
  for (let from = 0; from < KEYS; from += 5_000) {
    const p = client.pipeline();
    for (let i = from; i < Math.min(KEYS, from + 5_000); i += 1) {
      p.set(`lock:held:${i}`, value, 'PX', 600_000).set(`fence:lock:held:${i}`, String(i + 1));
    }
    await p.exec();
  }
}

/** Acquire + release of one key in a loop until `stop()`; the latency of each. */
function probe(locks: LockService): { stop: () => Promise<number[]> } {
  const latencies: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      const lock = await locks.acquire('probe', { ttl: 5_000 });
      await lock.release();
      latencies.push(performance.now() - t);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return latencies;
    },
  };
}

async function usecPerCall(clients: Redis[], command: string): Promise<number> {
  let calls = 0;
  let usec = 0;
  for (const c of clients) {
    const info = await c.info('commandstats');
    const m = new RegExp(`cmdstat_${command}:calls=(\\d+),usec=(\\d+)`).exec(info);
    if (m) {
      calls += Number(m[1]);
      usec += Number(m[2]);
    }
  }
  return calls === 0 ? Number.NaN : usec / calls;
}

async function main(): Promise<void> {
  const fleet = await RedisFleet.start(3);
  const inspect = fleet.urls.map((u) => new Redis(u));
  const app = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ connections: fleet.urls, logger: false })],
  }).compile();
  await app.init();
  const locks = app.get(LockService);
  const admin = app.get(LockAdmin);
  try {
    const t0 = performance.now();
    await Promise.all(inspect.map(fill));
    console.log(
      `filled ${KEYS} held keys on each of 3 instances in ${Math.round(performance.now() - t0)} ms`,
    );

    const alone: number[] = [];
    const duringList: number[] = [];
    const duringKeys: number[] = [];
    const listMs: number[] = [];
    const keysMs: number[] = [];
    const limitedMs: number[] = [];
    let listed = 0;
    for (const c of inspect) await c.config('RESETSTAT');
    for (let r = 0; r < ROUNDS; r += 1) {
      let p = probe(locks);
      await new Promise((res) => setTimeout(res, 1_500));
      alone.push(...(await p.stop()));

      p = probe(locks);
      let t = performance.now();
      listed = (await admin.list({ limit: KEYS })).length;
      listMs.push(performance.now() - t);
      duringList.push(...(await p.stop()));

      p = probe(locks);
      t = performance.now();
      await Promise.all(inspect.map((c) => c.keys('lock:*')));
      keysMs.push(performance.now() - t);
      duringKeys.push(...(await p.stop()));

      t = performance.now();
      await admin.list({ limit: 100 });
      limitedMs.push(performance.now() - t);
    }
    const scanUs = await usecPerCall(inspect, 'scan');
    const keysUs = await usecPerCall(inspect, 'keys');
    const row = (name: string, l: number[]) =>
      `| ${name} | ${l.length} | ${quantile(l, 0.5).toFixed(2)} | ${quantile(l, 0.99).toFixed(2)} | ${Math.max(...l).toFixed(1)} |`;
    const median = (l: number[]) => quantile(l, 0.5);
    const lines = [
      START,
      `Measured by \`npm run bench:admin\` (${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, ` +
        `load ${loadavg()[0].toFixed(1)}, redis-server on loopback): ${KEYS.toLocaleString('en')} held keys on each of ` +
        `3 instances, ${ROUNDS} rounds. A probe acquires and releases a lock in a loop on the same instances.`,
      '',
      '| probe (acquire + release) | runs | p50 ms | p99 ms | max ms |',
      '|---|---|---|---|---|',
      row('alone', alone),
      row('while `list({ limit: 100000 })` runs (SCAN)', duringList),
      row('while `KEYS lock:*` runs on each instance', duringKeys),
      '',
      '| operation | median ms | Redis time per call |',
      '|---|---|---|',
      `| \`list({ limit: ${KEYS} })\`: ${listed.toLocaleString('en')} locks | ${median(listMs).toFixed(0)} | SCAN ${scanUs.toFixed(0)} µs |`,
      `| \`list({ limit: 100 })\` (stops early) | ${median(limitedMs).toFixed(1)} | SCAN ${scanUs.toFixed(0)} µs |`,
      `| \`KEYS lock:*\` on 3 instances (reference, never used) | ${median(keysMs).toFixed(0)} | KEYS ${(keysUs / 1000).toFixed(1)} ms |`,
      '',
      `Probe max latency while listing: ${Math.max(...duringList).toFixed(1)} ms vs ${Math.max(...duringKeys).toFixed(1)} ms ` +
        `under KEYS (ratio ${(Math.max(...duringKeys) / Math.max(...duringList)).toFixed(1)}x); p99 ratio list/alone ` +
        `${(quantile(duringList, 0.99) / quantile(alone, 0.99)).toFixed(2)}.`,
      END,
    ];
    const section = lines.join('\n');
    console.log(section);
    const doc = readFileSync(DOC, 'utf8');
    const next = doc.includes(START)
      ? doc.slice(0, doc.indexOf(START)) + section + doc.slice(doc.indexOf(END) + END.length)
      : `${doc.trimEnd()}\n\n${section}\n`;
    writeFileSync(DOC, await format(next, { ...(await resolveConfig(DOC)), filepath: DOC }));
  } finally {
    await app.close();
    await Promise.all(inspect.map((c) => c.quit()));
    await fleet.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
