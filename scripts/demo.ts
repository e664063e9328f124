/**
 * `npm run demo [-- --backend redis|postgres|etcd]`: three replicas of the example app (src/) locking in
 * three Redis instances (default), in one PostgreSQL server or in a 3-member etcd cluster, for about 20 s, with one replica
 * killed midway. Prints which replica ran each cron tick and a verdict that counts, for every tick
 * in the window, runs (exactly 1 expected: 0 is a missed tick, 2+ a duplicate), payments accepted
 * per order, and @Timeout warm-ups. One tick may be missed without failing: the
 * tick the killed replica may have claimed just before SIGKILL (it is named in the output).
 * Then prints, per replica, the lock events its `LockEventsListener` counted from
 * `LockService.events` and compares them with what the jobs recorded, and writes an HTML timeline of
 * who ran each tick to demo-output/timeline.html (`npm run demo:timeline-check` screenshots it).
 * Before stopping the replicas it asks a live one for `GET /health` and scrapes its `/metrics` once
 * (each replica serves Prometheus metrics on its own METRICS_PORT), and checks both.
 * Exits 0 only when every check passed.
 *
 * Redis backend: uses REDIS_URLS if set, otherwise starts three redis-server processes; the jobs'
 * audit records go to the first. PostgreSQL backend: starts a throwaway PostgreSQL server
 * (test/support/postgres-server.ts) for the locks, and one redis-server for the audit records
 * (the first of REDIS_URLS if set). etcd backend: starts three etcd members
 * (test/support/etcd-cluster.ts) for the locks, and one redis-server for the audit records.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Redis } from 'ioredis';
import { EtcdCluster } from '../test/support/etcd-cluster';
import { postgresBinaries, PostgresServer } from '../test/support/postgres-server';
import { freePort, RedisFleet } from '../test/support/redis-fleet';
import {
  compareRuns,
  count,
  formatEventTable,
  HANDLERS,
  readReplica,
  replicaKeys,
  type Check,
  type ReplicaRecord,
} from './demo/lock-events';
import { formatObservation, observationChecks, observe } from './demo/observability';
import { formatOperatorView, operatorChecks, operatorList } from './demo/operator';
import { renderTimeline, type TimelineNote } from './demo/timeline';

const RUN_MS = Number(process.env.DEMO_MS ?? 20_000);
/** Where the timeline is written (gitignored). */
const OUTPUT_DIR = join(__dirname, '../demo-output');
const NAMES = ['A', 'B', 'C'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Replica {
  name: string;
  port: number;
  /** Where it serves `/metrics` (src/telemetry.ts). */
  metricsPort: number;
  child: ChildProcess;
  /** Epoch ms: it answered `ready`. */
  readyAt: number;
  /** Epoch ms: the demo sent it SIGKILL or SIGTERM. */
  stoppedAt?: number;
}

type Backend = 'redis' | 'postgres' | 'etcd';

/** `--backend redis|postgres|etcd` (or `--backend=...`) from the command line; Redis by default. */
function backendArg(argv: string[]): Backend {
  const i = argv.findIndex((a) => a === '--backend' || a.startsWith('--backend='));
  if (i === -1) return 'redis';
  const value = argv[i].includes('=') ? argv[i].split('=')[1] : argv[i + 1];
  if (value === 'redis' || value === 'postgres' || value === 'etcd') return value;
  throw new Error(`--backend must be redis, postgres or etcd, not ${JSON.stringify(value)}`);
}

/** Where the replicas lock and where their jobs write the audit records, and what to call it. */
interface Stores {
  /** The lock backend, for the header line and the timeline. */
  label: string;
  /** How many independent lock instances `/health` must report, all up. */
  instances: number;
  /** The lock settings every replica gets (LOCK_BACKEND and REDIS_URLS or DATABASE_URL). */
  env: Record<string, string>;
  /** The same store for the operator's CLI (`--redis URL,...`, `--postgres URL`, `--etcd HOST,...`). */
  cliArgs: string[];
  auditUrl: string;
  stop(): Promise<void>;
}

async function startStores(backend: Backend): Promise<Stores> {
  const given = process.env.REDIS_URLS?.split(',').map((u) => u.trim());
  if (backend === 'redis') {
    const fleet = given ? undefined : await RedisFleet.start(3);
    const urls = fleet?.urls ?? given!;
    return {
      label: `Redis, ${urls.length} instance(s) (Redlock), ${fleet ? 'started by the demo' : 'from REDIS_URLS'}: ${urls.join(', ')}`,
      instances: urls.length,
      env: { LOCK_BACKEND: 'redis', REDIS_URLS: urls.join(',') },
      cliArgs: ['--redis', urls.join(',')],
      auditUrl: urls[0], // the jobs' audit records go to the first
      stop: async () => fleet?.stop(),
    };
  }
  const fleet = given ? undefined : await RedisFleet.start(1);
  const auditUrl = fleet?.urls[0] ?? given![0];
  if (backend === 'etcd') {
    let cluster: EtcdCluster;
    try {
      cluster = await EtcdCluster.start(3);
    } catch (error) {
      await fleet?.stop();
      throw error;
    }
    return {
      label:
        `etcd, 3 members started by the demo: ${cluster.hosts.join(', ')}` +
        ` (audit records in Redis, ${fleet ? 'started by the demo' : 'from REDIS_URLS'}: ${auditUrl})`,
      instances: 3,
      env: { LOCK_BACKEND: 'etcd', ETCD_HOSTS: cluster.hosts.join(',') },
      cliArgs: ['--etcd', cluster.hosts.join(',')],
      auditUrl,
      stop: async () => {
        await cluster.stop();
        await fleet?.stop();
      },
    };
  }
  let postgres: PostgresServer;
  try {
    postgres = await PostgresServer.start();
  } catch (error) {
    await fleet?.stop();
    throw error;
  }
  return {
    label:
      `PostgreSQL ${postgresBinaries().major}, one server started by the demo: ${postgres.connectionString}` +
      ` (audit records in Redis, ${fleet ? 'started by the demo' : 'from REDIS_URLS'}: ${auditUrl})`,
    instances: 1,
    env: { LOCK_BACKEND: 'postgres', DATABASE_URL: postgres.connectionString },
    cliArgs: ['--postgres', postgres.connectionString],
    auditUrl,
    stop: async () => {
      await postgres.stop();
      await fleet?.stop();
    },
  };
}

async function startReplica(
  name: string,
  stores: Pick<Stores, 'env' | 'auditUrl'>,
): Promise<Replica> {
  const port = await freePort();
  const metricsPort = await freePort();
  const child = fork(join(__dirname, '../src/main.ts'), [], {
    env: {
      ...process.env,
      ...stores.env,
      AUDIT_REDIS_URL: stores.auditUrl,
      PORT: String(port),
      METRICS_PORT: String(metricsPort),
      REPLICA: name,
      TS_NODE_TRANSPILE_ONLY: 'true',
      TS_NODE_PROJECT: join(__dirname, '../tsconfig.json'),
    },
    execArgv: ['-r', 'ts-node/register', '-r', 'tsconfig-paths/register'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`replica ${name} exited with ${code}`)));
  });
  return { name, port, metricsPort, child, readyAt: Date.now() };
}

async function pay(
  replicas: Replica[],
  orderId: string,
  attempts: number,
): Promise<{ ok: number; conflict: number; other: number }> {
  const statuses = await Promise.all(
    Array.from({ length: attempts }, (_, i) =>
      fetch(`http://127.0.0.1:${replicas[i % replicas.length].port}/orders/${orderId}/pay`, {
        method: 'POST',
      })
        .then((r) => r.status)
        .catch(() => 0),
    ),
  );
  return {
    ok: statuses.filter((s) => s === 200).length,
    conflict: statuses.filter((s) => s === 409).length,
    other: statuses.filter((s) => s !== 200 && s !== 409).length,
  };
}

async function main(): Promise<number> {
  const backend = backendArg(process.argv.slice(2));
  const stores = await startStores(backend);
  const audit = new Redis(stores.auditUrl);
  const replicas: Replica[] = [];
  try {
    await audit.del(
      'demo:count:report',
      'demo:who:report',
      'demo:payments',
      'demo:warmups',
      'demo:cleanups',
      'demo:log',
      ...NAMES.flatMap(replicaKeys),
    );
    console.log(`Lock backend: ${stores.label}`);
    for (const name of NAMES) replicas.push(await startReplica(name, stores));
    console.log(
      `Replicas A, B, C listening on ports ${replicas.map((r) => r.port).join(', ')}` +
        ` (/metrics on ${replicas.map((r) => r.metricsPort).join(', ')}); running ${RUN_MS / 1000} s\n`,
    );
    const started = Date.now();

    await sleep(RUN_MS * 0.2);
    const payBefore = await pay(replicas, '42', 12);

    await sleep(RUN_MS * 0.2);
    // Kill the replica that ran the most recent tick, the worst moment for it to vanish.
    const who = await audit.hgetall('demo:who:report');
    const lastTick = Math.max(...Object.keys(who).map(Number));
    const victim = replicas.find((r) => r.name === who[String(lastTick)]) ?? replicas[0];
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    victim.stoppedAt = killedAt;
    const alive = replicas.filter((r) => r !== victim);
    console.log(
      `Killed replica ${victim.name} (SIGKILL) at +${((killedAt - started) / 1000).toFixed(1)} s`,
    );

    await sleep(RUN_MS * 0.2);
    const payAfter = await pay(alive, '43', 12);
    await sleep(RUN_MS * 0.4);
    // What a load balancer and Prometheus see of a live replica, before the replicas stop.
    const observed = await observe(audit, alive[0]);
    // What an operator sees with the package CLI, against the same store, while the replicas run.
    const operator = await operatorList(stores.cliArgs, started);

    for (const r of alive) {
      r.child.kill('SIGTERM');
      r.stoppedAt = Date.now();
    }
    await Promise.all(
      alive.map(
        (r) =>
          new Promise((res) => (r.child.exitCode !== null ? res(null) : r.child.once('exit', res))),
      ),
    );

    const counts = await audit.hgetall('demo:count:report');
    const owners = await audit.hgetall('demo:who:report');
    const ticks = Object.keys(counts)
      .map(Number)
      .sort((a, b) => a - b);
    const first = ticks[0];
    const last = ticks[ticks.length - 1];
    console.log('\ntick (s)  replica  runs');
    // SIGKILL can land after the victim claimed the tick that fired last, before it recorded the run.
    const excusable = Math.floor(killedAt / 1000);
    let duplicates = 0;
    let missed = 0;
    let excused: number | undefined;
    for (let t = first; t <= last; t += 1) {
      const n = Number(counts[String(t)] ?? 0);
      if (n > 1) duplicates += 1;
      if (n === 0 && t === excusable) excused = t;
      else if (n === 0) missed += 1;
      const mark =
        t * 1000 >= killedAt && (t - 1) * 1000 < killedAt ? `   <- ${victim.name} killed` : '';
      console.log(
        `${String(t - first).padStart(8)}  ${(owners[String(t)] ?? '-').padStart(7)}  ${String(n).padStart(4)}${mark}`,
      );
    }
    const total = last - first + 1;
    const once = total - duplicates - missed - (excused === undefined ? 0 : 1);
    const takeover = ticks.find((t) => t * 1000 > killedAt && owners[String(t)] !== victim.name);
    const takeoverMs = takeover === undefined ? NaN : takeover * 1000 - killedAt;
    const payments = await audit.hgetall('demo:payments');
    const warmups = Number((await audit.get('demo:warmups')) ?? 0);
    const charged42 = Number(payments['42'] ?? 0);
    const charged43 = Number(payments['43'] ?? 0);

    const checks: Check[] = [
      [
        total >= 5 && duplicates === 0 && missed === 0,
        `cron ticks: ${total} in the window, ${once} ran exactly once, ${duplicates} ran more than once, ${missed} missed` +
          (excused === undefined
            ? ''
            : ` (+1 not run: tick +${excused - first}, the one ${victim.name} may have claimed just before it was killed; not counted as missed)`),
      ],
      [
        payBefore.ok === 1 && charged42 === 1,
        `order 42: ${payBefore.ok + payBefore.conflict + payBefore.other} pays across 3 replicas, ${payBefore.ok} accepted, ${payBefore.conflict} answered 409, ${payBefore.other} other; charged ${charged42} time(s)`,
      ],
      [
        payAfter.ok === 1 && charged43 === 1,
        `order 43: ${payAfter.ok + payAfter.conflict + payAfter.other} pays across 2 replicas, ${payAfter.ok} accepted, ${payAfter.conflict} answered 409, ${payAfter.other} other; charged ${charged43} time(s)`,
      ],
      [warmups === 1, `@Timeout warm-up: ran ${warmups} time(s) across 3 replicas`],
      [
        Number.isFinite(takeoverMs),
        `takeover: after SIGKILL of ${victim.name}, the next tick ran on another replica ${takeoverMs} ms later`,
      ],
    ];
    console.log(`\nran on: ${[...new Set(Object.values(owners))].sort().join(', ')}`);
    console.log(
      `\nHealth and metrics of live replica ${observed.replica} at +${((observed.at - started) / 1000).toFixed(1)} s:\n${formatObservation(observed)}`,
    );

    console.log(
      `\nHeld locks as an operator sees them (\`nestjs-distributed-lock list\`) at +${operator.at.toFixed(1)} s:\n${formatOperatorView(operator)}`,
    );

    const records = await Promise.all(
      replicas.map((r) =>
        readReplica(audit, {
          name: r.name,
          readyAt: r.readyAt,
          stoppedAt: r.stoppedAt,
          killed: r === victim,
        }),
      ),
    );
    console.log(
      `\nLock events per replica, counted from LockService.events by src/audit/lock-events.listener.ts` +
        ` (${victim.name}'s counts stop at its SIGKILL):\n${formatEventTable(records)}`,
    );
    checks.push(
      ...eventChecks(records, {
        charged: charged42 + charged43,
        conflicts: payBefore.conflict + payAfter.conflict,
      }),
      ...observationChecks(observed, stores.instances),
      ...operatorChecks(operator, NAMES),
    );

    console.log('');
    for (const [passed, line] of checks) console.log(`${passed ? 'ok  ' : 'FAIL'}  ${line}`);
    const ok = checks.every(([passed]) => passed);

    const notes = (await audit.lrange('demo:log', 0, -1)).map((j) => JSON.parse(j) as TimelineNote);
    mkdirSync(OUTPUT_DIR, { recursive: true });
    const timeline = join(OUTPUT_DIR, 'timeline.html');
    writeFileSync(
      timeline,
      renderTimeline({
        generatedAt: Date.now(),
        backend: stores.label,
        firstTick: first,
        lastTick: last,
        runsPerTick: new Map(Object.entries(counts).map(([t, n]) => [Number(t), Number(n)])),
        excusedTick: excused,
        replicas: records,
        killed: { name: victim.name, at: killedAt },
        notes,
        checks,
      }),
    );
    console.log(
      `\nTimeline of who ran each tick: ${relative(process.cwd(), timeline) || timeline}` +
        ' (npm run demo:timeline-check renders it with headless Chromium)',
    );
    console.log(
      ok
        ? `\nPASS (${backend}): every cron tick in the window ran exactly once (no duplicate, no miss), each order was charged exactly once, the warm-up ran once, each replica's lock events agree with what its jobs recorded, a live replica's /health and /metrics agree with them, and the operator CLI listed held keys of demo replicas only, without lock values.`
        : '\nFAIL: see the lines marked FAIL above.',
    );
    return ok ? 0 : 1;
  } finally {
    for (const r of replicas)
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    await audit.quit();
    await stores.stop();
  }
}

/**
 * The lock events against the audit: acquisitions of each job = the runs it recorded, per replica;
 * the route's acquisitions and busy answers = payments charged and 409s; every lock acquired on a
 * replica that shut down cleanly ended (released or lost); no lock lost, no outage.
 */
function eventChecks(
  records: ReplicaRecord[],
  http: { charged: number; conflicts: number },
): Check[] {
  const sum = (handler: string | undefined, outcome: string) =>
    records.reduce((n, r) => n + count(r, handler, outcome), 0);
  const warmAcquired = sum(HANDLERS.warmCache, 'acquired');
  const warmSkipped = sum(HANDLERS.warmCache, 'skipped:busy');
  const warmRuns = records.reduce((n, r) => n + (r.runs.get('warmups') ?? 0), 0);
  const payAcquired = sum(HANDLERS.pay, 'acquired');
  const payBusy = sum(HANDLERS.pay, 'busy');
  const ended = records
    .filter((r) => !r.killed)
    .map((r) => ({
      name: r.name,
      acquired: count(r, undefined, 'acquired'),
      released: count(r, undefined, 'released'),
      lost: count(r, undefined, 'lost'),
    }));
  const lost = sum(undefined, 'lost');
  const unavailable = sum(undefined, 'unavailable') + sum(undefined, 'skipped:unavailable');
  return [
    compareRuns(records, HANDLERS.report, 'report', '@Cron report (ticks run)'),
    compareRuns(records, HANDLERS.cleanup, 'cleanups', '@Interval cleanup'),
    [
      warmAcquired === warmRuns && warmAcquired + warmSkipped === records.length,
      `events vs audit, @Timeout warm-up: ${warmAcquired} acquisition(s) = ${warmRuns} warm-up(s) recorded; ` +
        `${warmSkipped} replica(s) skipped it as busy (${warmAcquired + warmSkipped} of ${records.length} invocations accounted for)`,
    ],
    [
      payAcquired === http.charged && payBusy === http.conflicts,
      `events vs HTTP, POST /orders/:id/pay: ${payAcquired} acquisition(s) = ${http.charged} payment(s) charged; ` +
        `${payBusy} busy = ${http.conflicts} answers 409`,
    ],
    [
      ended.every((e) => e.acquired === e.released + e.lost),
      `every lock ended: ${ended.map((e) => `${e.name} acquired ${e.acquired} = released ${e.released} + lost ${e.lost}`).join('; ')} (replicas stopped by SIGTERM; a SIGKILLed one cannot report its ends)`,
    ],
    [
      lost === 0 && unavailable === 0,
      `no lock lost and no outage: ${lost} lost, ${unavailable} unavailable (acquisitions or skipped runs), counted on ${records.map((r) => r.name).join(', ')}`,
    ],
  ];
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
