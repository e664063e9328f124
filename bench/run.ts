/**
 * `npm run bench`: LockService against the Redis round-trip floor and direct redlock, interleaved in
 * one run, on 1 and 3 local redis-server instances at concurrency 1 and 64, and LockService with an
 * OpenTelemetry SDK recording its metrics and spans against the same LockService without it.
 * Writes docs/BENCHMARKS.md.
 * Not a test: numbers depend on the machine; ratios measured side by side are what we compare.
 */
import 'reflect-metadata';
import { Redlock } from '@sesamecare-oss/redlock';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Test } from '@nestjs/testing';
import { metrics, trace } from '@opentelemetry/api';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { DistributedLockModule, LockService, redisBackend } from '../libs/distributed-lock/src';
import { RedisFleet } from '../test/support/redis-fleet';
import { decoratorCases, routeBench } from './exclusive.bench';
import {
  batchPerTurn,
  interleave,
  majority,
  quantile,
  type BenchCase,
  type CaseResult,
} from './harness';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WINDOW_MS = Number(process.env.BENCH_WINDOW_MS ?? 1_000);
const TTL = 10_000;
const FLOOR = 'raw SET NX PX + Lua compare-and-delete (floor)';
const REDLOCK = '@sesamecare-oss/redlock acquire + release';
const CAD = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;
const FENCED_FLOOR = 'raw fenced floor: one Lua SET NX PX + counter, Lua compare-and-delete';
const FENCED_CORKED = 'raw fenced floor, writes batched per turn (socket corked until nextTick)';
const SERVICE = 'LockService acquire + release';
const SERVICE_OTEL = 'LockService acquire + release with OpenTelemetry SDK recording';
const SERVICE_NO_SDK =
  'LockService acquire + release, OpenTelemetry listener on, no SDK (no-op API)';
const SERVICE_STORES =
  'LockService acquire + release, 2 named stores configured, 200-character identity';
/** Markers around what this command writes in docs/BENCHMARKS.md; other benches own other parts. */
const START = '<!-- npm run bench: start -->';
const END = '<!-- npm run bench: end -->';
/** What fencing adds in Redis, written by hand: the grant and the counter in one script. */
const SET_AND_COUNT = `if not redis.call("set", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then return -1 end
return redis.call("incr", KEYS[2])`;

type CadClient = Redis & {
  cad(key: string, token: string): Promise<number>;
  setAndCount(key: string, counter: string, token: string, ttl: number): Promise<number>;
};

/** The fail-fast settings the module gives its own connections (the floor gets the same). */
const FAIL_FAST = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: 500,
} as const;

async function clientsFor(urls: string[]): Promise<CadClient[]> {
  const clients = urls.map((u) => {
    const c = new Redis(u, FAIL_FAST) as CadClient;
    c.defineCommand('cad', { numberOfKeys: 1, lua: CAD });
    c.defineCommand('setAndCount', { numberOfKeys: 2, lua: SET_AND_COUNT });
    return c;
  });
  await Promise.all(clients.map((c) => c.connect()));
  return clients;
}

async function casesFor(fleet: RedisFleet, label: string) {
  const raw = await clientsFor(fleet.urls);
  const direct = await clientsFor(fleet.urls);
  const redlock = new Redlock(direct, { retryCount: 0 });
  // Two modules in one process: `openTelemetry: false` is how one of them runs without the listener
  // while @opentelemetry/api is installed and an SDK is registered globally.
  const app = await Test.createTestingModule({
    imports: [
      DistributedLockModule.forRoot({
        connections: fleet.urls,
        logger: false,
        openTelemetry: false,
      }),
    ],
  }).compile();
  await app.init();
  const locks = app.get(LockService);
  const otelApp = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ connections: fleet.urls, logger: false })],
  }).compile();
  await otelApp.init();
  const otelLocks = otelApp.get(LockService);
  // The default-store path with what named stores and identity add around it: do they cost anything?
  const storesApp = await Test.createTestingModule({
    imports: [
      DistributedLockModule.forRoot({
        connections: fleet.urls,
        logger: false,
        openTelemetry: false,
        identity: 'i'.repeat(200),
        stores: {
          archive: redisBackend({ connections: [fleet.urls[0]], logger: false }),
          cache: redisBackend({ connections: [fleet.urls[0]], logger: false }),
        },
      }),
    ],
  }).compile();
  await storesApp.init();
  const storesLocks = storesApp.get(LockService);
  const need = Math.floor(raw.length / 2) + 1;
  /** Run before any SDK is registered: the listener's own cost over the no-op API. */
  const noSdk: BenchCase[] = [];
  const fenced = await clientsFor(fleet.urls);
  const corked = await clientsFor(fleet.urls);
  const corkedHolds = corked.map(batchPerTurn);
  /** The fenced floor by hand on `clients`; `holds[k]`, when given, runs before each send to k. */
  const fencedOp =
    (clients: CadClient[], prefix: string, holds?: Array<() => void>) =>
    async (w: number, i: number) => {
      const key = `lock:bench:${prefix}:${w}:${i % 1000}`;
      const token = randomBytes(16).toString('hex');
      await majority(
        clients.map((c, k) => (holds?.[k](), c.setAndCount(key, `fence:${key}`, token, TTL))),
        need,
      );
      await majority(
        clients.map((c, k) => (holds?.[k](), c.cad(key, token))),
        need,
      );
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
        name: FENCED_FLOOR,
        group,
        concurrency,
        op: fencedOp(fenced, 'fenced'),
      },
      {
        name: FENCED_CORKED,
        group,
        concurrency,
        op: fencedOp(corked, 'corked', corkedHolds),
      },
      {
        name: SERVICE,
        group,
        concurrency,
        op: async (w, i) => {
          const lock = await locks.acquire(`bench:svc:${w}:${i % 1000}`, { ttl: TTL });
          await lock.release();
        },
      },
      {
        name: SERVICE_OTEL,
        group,
        concurrency,
        op: async (w, i) => {
          const lock = await otelLocks.acquire(`bench:otel:${w}:${i % 1000}`, { ttl: TTL });
          await lock.release();
        },
      },
      {
        name: SERVICE_STORES,
        group,
        concurrency,
        op: async (w, i) => {
          const lock = await storesLocks.acquire(`bench:stores:${w}:${i % 1000}`, { ttl: TTL });
          await lock.release();
        },
      },
    );
    noSdk.push(
      {
        name: SERVICE,
        group,
        concurrency,
        op: async (w, i) => {
          const lock = await locks.acquire(`bench:nosdk-off:${w}:${i % 1000}`, { ttl: TTL });
          await lock.release();
        },
      },
      {
        name: SERVICE_NO_SDK,
        group,
        concurrency,
        op: async (w, i) => {
          const lock = await otelLocks.acquire(`bench:nosdk-on:${w}:${i % 1000}`, { ttl: TTL });
          await lock.release();
        },
      },
    );
  }
  const close = async () => {
    await app.close();
    await otelApp.close();
    await storesApp.close();
    await Promise.all([...raw, ...direct, ...fenced, ...corked].map((c) => c.quit()));
  };
  return { cases, noSdk, close };
}

/**
 * An OpenTelemetry SDK registered the way an application registers it: metrics read every second and
 * spans batched (every span sampled), both exported to sinks that drop them, so what is measured is
 * recording, not shipping. No context manager: context.active() is the root context.
 * Returns the function that unregisters it.
 */
function installOpenTelemetry(): () => Promise<void> {
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({
        exportIntervalMillis: 1_000,
        exporter: {
          export: (_metrics, done) => done({ code: 0 }),
          forceFlush: () => Promise.resolve(),
          shutdown: () => Promise.resolve(),
        },
      }),
    ],
  });
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [
      new BatchSpanProcessor({
        export: (_spans, done) => done({ code: 0 }),
        shutdown: () => Promise.resolve(),
      }),
    ],
  });
  if (
    !metrics.setGlobalMeterProvider(meterProvider) ||
    !trace.setGlobalTracerProvider(tracerProvider)
  ) {
    throw new Error('an OpenTelemetry global provider was already registered');
  }
  return async () => {
    metrics.disable();
    trace.disable();
    await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]);
  };
}

/** Per group: LockService with the OpenTelemetry listener recording against the same without it. */
function otelTable(results: CaseResult[], on = SERVICE_OTEL): string {
  const lines = [
    '| group | without ops/s | with ops/s | with / without | p50 ms without → with | p99 ms without → with |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const g of [...new Set(results.map((r) => r.group))]) {
    const off = results.find((r) => r.group === g && r.name === SERVICE);
    const with_ = results.find((r) => r.group === g && r.name === on);
    if (!off || !with_) continue;
    const rate = (r: CaseResult) => r.ops / r.seconds;
    const q = (r: CaseResult, p: number) => quantile(r.latencies, p).toFixed(3);
    lines.push(
      `| ${g} | ${Math.round(rate(off)).toLocaleString('en-US')} | ${Math.round(rate(with_)).toLocaleString('en-US')} | ${(rate(with_) / rate(off)).toFixed(3)}× | ${q(off, 0.5)} → ${q(with_, 0.5)} | ${q(off, 0.99)} → ${q(with_, 0.99)} |`,
    );
  }
  return lines.join('\n') + '\n';
}

/** ops/s of case `name` in `group`, or NaN when it did not run. */
function rateOf(results: CaseResult[], group: string, name: string): number {
  const r = results.find((x) => x.group === group && x.name === name);
  return r ? r.ops / r.seconds : Number.NaN;
}

/**
 * The issue's goals (#15) checked against this run's own ratios: every line says which two rows it
 * divides, the goal, and whether this run met it.
 */
function goals(
  acquire: CaseResult[],
  listenerOnly: CaseResult[],
  routes: Awaited<ReturnType<typeof routeBench>>,
): string {
  const lines = [
    '### Against the goals, in this run',
    '',
    '| check | ratio | goal | met |',
    '|---|---:|---:|---|',
  ];
  const row = (check: string, ratio: number, goal: number) =>
    lines.push(
      `| ${check} | ${ratio.toFixed(2)}× | ≥ ${goal.toFixed(2)}× | ${ratio >= goal ? 'yes' : 'no'} |`,
    );
  for (const g of [...new Set(acquire.map((r) => r.group))]) {
    const goal = g.endsWith('concurrency 1') ? 0.95 : 0.9;
    const service = rateOf(acquire, g, SERVICE);
    row(`${g}: LockService / fenced floor`, service / rateOf(acquire, g, FENCED_FLOOR), goal);
    row(
      `${g}: LockService / batched fenced floor`,
      service / rateOf(acquire, g, FENCED_CORKED),
      goal,
    );
  }
  for (const g of [...new Set(listenerOnly.map((r) => r.group))]) {
    row(
      `${g}: OpenTelemetry listener on, no SDK / off (the library's own overhead ≤ 3%)`,
      rateOf(listenerOnly, g, SERVICE_NO_SDK) / rateOf(listenerOnly, g, SERVICE),
      0.97,
    );
  }
  const rps = (i: number) => (routes[i] ? routes[i].requests / routes[i].seconds : Number.NaN);
  row('@Exclusive route / the floor route by hand', rps(2) / rps(1), 0.9);
  return lines.join('\n') + '\n';
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
  const listenerOnly: CaseResult[] = [];
  let routes: Awaited<ReturnType<typeof routeBench>> = [];
  try {
    const one = await casesFor(fleets.one, '1 instance');
    const three = await casesFor(fleets.three, '3 instances');
    const dec = await decoratorCases(fleets.three.urls);
    try {
      listenerOnly.push(...(await interleave([...one.noSdk, ...three.noSdk], ROUNDS, WINDOW_MS)));
      // The SDK is registered for the acquire cases only: the decorator and route cases below keep
      // measuring what they did before (@opentelemetry/api installed, no SDK: no-op instruments).
      const uninstall = installOpenTelemetry();
      try {
        acquire.push(...(await interleave([...one.cases, ...three.cases], ROUNDS, WINDOW_MS)));
      } finally {
        await uninstall();
      }
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
    `Local \`redis-server\` processes on loopback started by the test harness. Every case runs in one process, interleaved: ${ROUNDS} rounds × ${WINDOW_MS} ms per case after a warm-up, in a different shuffled order each round, so machine noise and neighbouring cases hit all alike. One operation = acquire + release of a fresh key (no contention), TTL ${TTL} ms. Concurrency = that many async workers sharing one connection per instance. The floor is what any Redis lock must do: \`SET key token PX ttl NX\` then a Lua compare-and-delete, on every instance, each step waiting for a majority. The fenced floor is the same with the grant and a fencing-counter \`INCR\` in one script: what fencing costs in Redis, without any switch in the library. "vs" columns are ratios of ops/s in this same run. These are loopback numbers on a shared 2-core machine that also runs the Redis servers: compare the ratios, not the absolute figures.`,
    '',
    '## Acquire + release',
    '',
    "The library batches writes (redis/write-batch.ts): when a connection already waits for replies, the commands sent to it in the same turn of the event loop leave in one socket write. The hand-written floors above write one command per `write(2)`, as ioredis does by default; the batched fenced floor does what the library does, by hand, so the gap to it is the library's own cost.",
    '',
    table(acquire, [FLOOR, FENCED_FLOOR, FENCED_CORKED, REDLOCK]),
    goals(acquire, listenerOnly, routes),
    '## OpenTelemetry overhead',
    '',
    `The same acquire + release on two modules in one process, interleaved with the cases above: one with \`openTelemetry: false\`, one recording through an OpenTelemetry SDK registered as the global providers (sdk-metrics with a reader collecting every second, sdk-trace-base with a batch span processor sampling every span; both export to sinks that drop the data, so this is the cost of recording, not of shipping). Per operation that is one \`lock.acquire.duration\` recording and one \`lock.acquire\` span (\`lock.held\` is a plain counter read at collection). Most of the difference is the SDK's own work per operation (attribute hashing and aggregation for the histogram, building and batching the span, and the garbage of both), which weighs most here, where an operation costs only tens of microseconds of CPU on loopback.`,
    '',
    otelTable(acquire),
    '### The listener alone (no SDK registered)',
    '',
    "The library's own share: the same two modules, interleaved in a phase of their own before any SDK is registered, so the listener builds events and calls the no-op OpenTelemetry API. What an SDK adds on top (the table above) is the SDK's work and follows your sampling: a sampler that drops most spans removes most of the span cost.",
    '',
    otelTable(listenerOnly, SERVICE_NO_SDK),
    '## Named stores and identity',
    '',
    `The "${SERVICE_STORES}" row above is the default-store path of a module that also has two named stores and a 200-character \`identity\` (stored with every lock value): compare it with the "${SERVICE}" row of the same group.`,
    '',
    '## @Exclusive() overhead',
    '',
    'The same work (return a constant) through a decorated provider method and through `runExclusive`, each acquiring, auto-extending and releasing a fresh key per call, on 3 instances, interleaved as above.',
    '',
    table(decorated, ['runExclusive']),
    '## HTTP route under load',
    '',
    `autocannon in the same process as the servers, 32 connections, ${plainRoute?.p99.length ?? 0} interleaved windows per route, every request a new order id (so every request takes and releases its own lock on 3 instances). Express adapter, logging off.`,
    '',
    '| route | req/s | p99 ms (worst window) | non-2xx | vs undecorated | vs floor route |',
    '|---|---:|---:|---:|---:|---:|',
    ...routes.map(
      (r) =>
        `| ${r.name} | ${Math.round(r.requests / r.seconds).toLocaleString('en-US')} | ${Math.max(...r.p99)} | ${r.non2xx} | ${(r.requests / r.seconds / (plainRoute.requests / plainRoute.seconds)).toFixed(2)}× | ${(r.requests / r.seconds / (routes[1].requests / routes[1].seconds)).toFixed(2)}× |`,
    ),
    '',
  ].join('\n');
  mkdirSync(join(__dirname, '..', 'docs'), { recursive: true });
  const file = join(__dirname, '..', 'docs', 'BENCHMARKS.md');
  const before = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const from = before.indexOf(START);
  const to = before.indexOf(END);
  // Only this command's part is replaced: other bench commands (bench:limits, bench:leader, ...)
  // write their own marked sections below it, which are kept.
  const other = before.indexOf('<!-- bench:');
  const rest =
    from >= 0 && to > from
      ? before.slice(to + END.length)
      : other >= 0
        ? `\n${before.slice(other)}`
        : '';
  writeFileSync(file, `${START}\n${body}\n${END}${rest || '\n'}`);
  console.log(body);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
