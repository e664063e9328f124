/**
 * `npm run bench`: LockService against the Redis round-trip floor and direct redlock, interleaved in
 * one run, on 1 and 3 local redis-server instances at concurrency 1 and 64. Writes docs/BENCHMARKS.md.
 * Not a test: numbers depend on the machine; ratios measured side by side are what we compare.
 */
import 'reflect-metadata';
import { Redlock } from '@sesamecare-oss/redlock';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Test } from '@nestjs/testing';
import { DistributedLockModule, LockService } from '../libs/distributed-lock/src';
import { failFastOptions } from '../libs/distributed-lock/src/redis/redis-instances';
import { RedlockEngine } from '../libs/distributed-lock/src/redlock/redlock.engine';
import { RedisFleet } from '../test/support/redis-fleet';
import { decoratorCases, routeBench } from './exclusive.bench';
import { interleave, majority, quantile, type BenchCase, type CaseResult } from './harness';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WINDOW_MS = Number(process.env.BENCH_WINDOW_MS ?? 1_000);
const TTL = 10_000;
const FLOOR = 'raw SET NX PX + Lua compare-and-delete (floor)';
const REDLOCK = '@sesamecare-oss/redlock acquire + release';
const CAD = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

type CadClient = Redis & { cad(key: string, token: string): Promise<number> };

async function clientsFor(urls: string[]): Promise<CadClient[]> {
  const clients = urls.map((u) => {
    const c = new Redis(u, failFastOptions(500)) as CadClient;
    c.defineCommand('cad', { numberOfKeys: 1, lua: CAD });
    return c;
  });
  await Promise.all(clients.map((c) => c.connect()));
  return clients;
}

async function casesFor(fleet: RedisFleet, label: string) {
  const raw = await clientsFor(fleet.urls);
  const direct = await clientsFor(fleet.urls);
  const redlock = new Redlock(direct, { retryCount: 0 });
  const app = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ connections: fleet.urls, logger: false })],
  }).compile();
  await app.init();
  const locks = app.get(LockService);
  const need = Math.floor(raw.length / 2) + 1;
  const engineClients = [await clientsFor(fleet.urls), await clientsFor(fleet.urls)];
  const engines = {
    on: new RedlockEngine(engineClients[0], 'lock:', 0.01, true),
    off: new RedlockEngine(engineClients[1], 'lock:', 0.01, false),
  };

  const cases: BenchCase[] = [];
  for (const concurrency of [1, 64]) {
    const group = `${label}, concurrency ${concurrency}`;
    cases.push(
      {
        name: FLOOR,
        group,
        concurrency,
        op: async (w, i) => {
          const key = `lock:bench:raw:${w}:${i % 1000}`;
          const token = randomBytes(16).toString('hex');
          await majority(
            raw.map((c) => c.set(key, token, 'PX', TTL, 'NX')),
            need,
          );
          await majority(
            raw.map((c) => c.cad(key, token)),
            need,
          );
        },
      },
      {
        name: REDLOCK,
        group,
        concurrency,
        op: async (w, i) => {
          const lock = await redlock.acquire([`lock:bench:redlock:${w}:${i % 1000}`], TTL);
          await lock.release();
        },
      },
      {
        name: 'lock engine, fencing on',
        group,
        concurrency,
        op: async (w, i) => {
          const k = [`bench:fon:${w}:${i % 1000}`];
          await engines.on.release(await engines.on.acquire(k, TTL), k);
        },
      },
      {
        name: 'lock engine, fencing off',
        group,
        concurrency,
        op: async (w, i) => {
          const k = [`bench:foff:${w}:${i % 1000}`];
          await engines.off.release(await engines.off.acquire(k, TTL), k);
        },
      },
      {
        name: 'LockService acquire + release',
        group,
        concurrency,
        op: async (w, i) => {
          const lock = await locks.acquire(`bench:svc:${w}:${i % 1000}`, { ttl: TTL });
          await lock.release();
        },
      },
    );
  }
  const close = async () => {
    await app.close();
    await Promise.all([...raw, ...direct, ...engineClients.flat()].map((c) => c.quit()));
  };
  return { cases, close };
}

/** A markdown table per group; each case's ops/s as a ratio of each baseline case in its group. */
function table(results: CaseResult[], baselines: string[]): string {
  const lines: string[] = [];
  for (const g of [...new Set(results.map((r) => r.group))]) {
    const rows = results.filter((r) => r.group === g);
    const bases = baselines.map((b) => rows.find((r) => r.name === b)!).filter(Boolean);
    lines.push(
      `### ${g}`,
      '',
      `| case | ops/s | p50 ms | p99 ms |${bases.map((b) => ` vs ${b.name} |`).join('')}`,
      `|---|---:|---:|---:|${bases.map(() => '---:|').join('')}`,
    );
    for (const r of rows) {
      const rate = r.ops / r.seconds;
      const rel = bases.map((b) => ` ${(rate / (b.ops / b.seconds)).toFixed(2)}× |`).join('');
      lines.push(
        `| ${r.name} | ${Math.round(rate).toLocaleString('en-US')} | ${quantile(r.latencies, 0.5).toFixed(3)} | ${quantile(r.latencies, 0.99).toFixed(3)} |${rel}`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const fleets = { one: await RedisFleet.start(1), three: await RedisFleet.start(3) };
  const acquire: CaseResult[] = [];
  const decorated: CaseResult[] = [];
  let routes: Awaited<ReturnType<typeof routeBench>> = [];
  try {
    const one = await casesFor(fleets.one, '1 instance');
    const three = await casesFor(fleets.three, '3 instances');
    const dec = await decoratorCases(fleets.three.urls);
    try {
      acquire.push(...(await interleave([...one.cases, ...three.cases], ROUNDS, WINDOW_MS)));
      decorated.push(...(await interleave(dec.cases, ROUNDS, WINDOW_MS)));
      routes = await routeBench(
        fleets.three.urls,
        Math.max(2, ROUNDS),
        Math.max(2, Math.round(WINDOW_MS / 500)),
      );
    } finally {
      await one.close();
      await three.close();
      await dec.close();
    }
  } finally {
    await fleets.one.stop();
    await fleets.three.stop();
  }
  const plainRoute = routes[0];
  const body = [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)} (${cpus().length} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}).`,
    '',
    '## Method',
    '',
    `Local \`redis-server\` processes on loopback started by the test harness. Every case runs in one process, interleaved: ${ROUNDS} rounds × ${WINDOW_MS} ms per case after a warm-up, in rotating order, so machine noise hits all cases alike. One operation = acquire + release of a fresh key (no contention), TTL ${TTL} ms. Concurrency = that many async workers sharing one connection per instance. The floor is what any Redis lock must do: \`SET key token PX ttl NX\` then a Lua compare-and-delete, on every instance, each step waiting for a majority. "vs" columns are ratios of ops/s in this same run. These are loopback numbers on a shared 2-core machine that also runs the Redis servers: compare the ratios, not the absolute figures.`,
    '',
    '## Acquire + release',
    '',
    table(acquire, [FLOOR, REDLOCK]),
    '## @Exclusive() overhead',
    '',
    'The same work (return a constant) through a decorated provider method and through `runExclusive`, each acquiring, auto-extending and releasing a fresh key per call, on 3 instances, interleaved as above.',
    '',
    table(decorated, ['runExclusive']),
    '## HTTP route under load',
    '',
    `autocannon in the same process as the servers, 32 connections, ${plainRoute?.p99.length ?? 0} interleaved windows per route, every request a new order id (so every request takes and releases its own lock on 3 instances). Express adapter, logging off.`,
    '',
    '| route | req/s | p99 ms (worst window) | non-2xx | vs undecorated |',
    '|---|---:|---:|---:|---:|',
    ...routes.map(
      (r) =>
        `| ${r.name} | ${Math.round(r.requests / r.seconds).toLocaleString('en-US')} | ${Math.max(...r.p99)} | ${r.non2xx} | ${(r.requests / r.seconds / (plainRoute.requests / plainRoute.seconds)).toFixed(2)}× |`,
    ),
    '',
  ].join('\n');
  mkdirSync(join(__dirname, '..', 'docs'), { recursive: true });
  writeFileSync(join(__dirname, '..', 'docs', 'BENCHMARKS.md'), body);
  console.log(body);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
