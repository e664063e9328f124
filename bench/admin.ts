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
import { spawn } from 'node:child_process';
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

/** One holder's value on every instance (as a lock granted by a majority has). */
const VALUE = newLockValue('bench-holder');

async function fill(client: Redis): Promise<void> {
  const value = VALUE;
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

/**
 * PING in a loop from another process (so the lister's own CPU does not count): how long Redis
 * itself keeps a client waiting. Resolves with the latencies on `stop()`.
 */
function pinger(url: string): { ready: Promise<void>; stop: () => Promise<number[]> } {
  const code = `
    const { Redis } = require('ioredis');
    const c = new Redis(process.env.URL);
    const l = []; let on = true;
    process.on('message', async () => { on = false; await done; process.send(l); await c.quit(); });
    const done = (async () => { while (on) { const t = performance.now(); await c.ping(); l.push(performance.now() - t); } })();
    c.once('ready', () => process.send('ready'));`;
  const child = spawn(process.execPath, ['-e', code], {
    env: { ...process.env, URL: url },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = new Promise<void>((r) => child.once('message', () => r()));
  return {
    ready,
    stop: async () => {
      await ready;
      const result = new Promise<number[]>((r) => child.once('message', (m) => r(m as number[])));
      child.send('stop');
      return result;
    },
  };
}

/** The largest value (no spread: the arrays are too long for it). */
function maxOf(values: number[]): number {
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  return max;
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

    type Phase = 'alone' | 'list' | 'keys';
    const phases: Phase[] = ['alone', 'list', 'keys'];
    const probeMs: Record<Phase, number[]> = { alone: [], list: [], keys: [] };
    const pingMs: Record<Phase, number[]> = { alone: [], list: [], keys: [] };
    const listMs: number[] = [];
    const keysMs: number[] = [];
    const limitedMs: number[] = [];
    let listed = 0;
    for (const c of inspect) {
      await c.config('RESETSTAT');
      await c.config('SET', 'slowlog-log-slower-than', '1000');
      await c.call('SLOWLOG', 'RESET');
    }
    for (let r = 0; r < ROUNDS; r += 1) {
      for (const phase of phases) {
        const ping = pinger(fleet.urls[0]);
        await ping.ready;
        await new Promise((res) => setTimeout(res, 100));
        const p = probe(locks);
        const t = performance.now();
        if (phase === 'alone') await new Promise((res) => setTimeout(res, 1_500));
        else if (phase === 'list') {
          listed = (await admin.list({ limit: KEYS })).length;
          listMs.push(performance.now() - t);
        } else {
          await Promise.all(inspect.map((c) => c.keys('lock:*')));
          keysMs.push(performance.now() - t);
        }
        for (const v of await p.stop()) probeMs[phase].push(v);
        for (const v of await ping.stop()) pingMs[phase].push(v);
      }
      const t = performance.now();
      await admin.list({ limit: 100 });
      limitedMs.push(performance.now() - t);
    }
    const scanUs = await usecPerCall(inspect, 'scan');
    const evalUs = await usecPerCall(inspect, 'eval');
    const keysUs = await usecPerCall(inspect, 'keys');
    /** The longest single SCAN / EVAL / KEYS each instance logged (SLOWLOG, µs). */
    const longest: Record<string, number> = { scan: 0, eval: 0, keys: 0 };
    for (const c of inspect) {
      const log = (await c.call('SLOWLOG', 'GET', '1000')) as Array<
        [number, number, number, string[]]
      >;
      for (const [, , us, args] of log) {
        const name = String(args[0]).toLowerCase();
        if (name in longest) longest[name] = Math.max(longest[name], us);
      }
      await c.config('SET', 'slowlog-log-slower-than', '10000');
    }
    const row = (name: string, l: number[]) =>
      `| ${name} | ${l.length} | ${quantile(l, 0.5).toFixed(2)} | ${quantile(l, 0.99).toFixed(2)} | ${maxOf(l).toFixed(1)} |`;
    const median = (l: number[]) => quantile(l, 0.5);
    const ms = (us: number) => (us === 0 ? '< 1' : (us / 1000).toFixed(1));
    const lines = [
      START,
      `Measured by \`npm run bench:admin\` (${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, ` +
        `load ${loadavg()[0].toFixed(1)}, redis-server on loopback): ${KEYS.toLocaleString('en')} held keys on each of ` +
        `3 instances, ${ROUNDS} rounds. While each operation runs, another process PINGs instance 1 in a loop ` +
        "(how long Redis keeps a client waiting), and the lister's own app acquires and releases a lock in a loop.",
      '',
      '| PING from another process, while … | runs | p50 ms | p99 ms | max ms |',
      '|---|---|---|---|---|',
      row('nothing else runs', pingMs.alone),
      row('`list({ limit: 100000 })` (SCAN, keys read by scripts of 200)', pingMs.list),
      row('`KEYS lock:*` on each instance (reference)', pingMs.keys),
      '',
      "| acquire + release in the lister's app, while … | runs | p50 ms | p99 ms | max ms |",
      '|---|---|---|---|---|',
      row('nothing else runs', probeMs.alone),
      row('`list({ limit: 100000 })`', probeMs.list),
      row('`KEYS lock:*` on each instance', probeMs.keys),
      '',
      '| operation | median ms | Redis: mean per call | Redis: longest call (SLOWLOG) |',
      '|---|---|---|---|',
      `| \`list({ limit: ${KEYS} })\`: ${listed.toLocaleString('en')} locks | ${median(listMs).toFixed(0)} | SCAN ${scanUs.toFixed(0)} µs, script ${evalUs.toFixed(0)} µs | SCAN ${ms(longest.scan)} ms, script ${ms(longest.eval)} ms |`,
      `| \`list({ limit: 100 })\` (stops early) | ${median(limitedMs).toFixed(1)} | | |`,
      `| \`KEYS lock:*\` on 3 instances (never used) | ${median(keysMs).toFixed(0)} | KEYS ${(keysUs / 1000).toFixed(1)} ms | KEYS ${ms(longest.keys)} ms |`,
      '',
      `PING max while listing ${maxOf(pingMs.list).toFixed(1)} ms vs ${maxOf(pingMs.keys).toFixed(1)} ms under KEYS; ` +
        `PING p99 list / alone ${(quantile(pingMs.list, 0.99) / quantile(pingMs.alone, 0.99)).toFixed(2)}.`,
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
