/**
 * `npm run bench:handoff` (first half): lock hand-off latency, i.e. the time from the holder's
 * `release()` resolving to the next waiter's acquisition resolving, for LockService and its peers,
 * side by side in one run (issue #8). Writes the "Hand-off" section of docs/HANDOFF.md.
 *
 * Waiters run in child processes (this same file, forked with ts-node, HANDOFF_ROLE=worker), so
 * timestamps are `performance.timeOrigin + performance.now()`: comparable across processes.
 * Uses only the public API of the library (its internal paths are being refactored).
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { Redlock } from '@sesamecare-oss/redlock';
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { format, resolveConfig } from 'prettier';
import { Mutex, RedlockMutex } from 'redis-semaphore';
import { DistributedLockModule, LockService } from '../libs/distributed-lock/src';
import { RedisFleet } from '../test/support/redis-fleet';
import { majority, quantile } from './harness';

const WAIT = 5_000;
const TTL = 5_000;
const A_MS = Number(process.env.HANDOFF_A_MS ?? 2_500); // per case, scenario (a)
const B_MS = Number(process.env.HANDOFF_B_MS ?? 3_000); // per case, scenario (b)
const A_HOLD = 5;
const B_HOLD = 2;
const PROCS = 4;
const PER_PROC = 4;
const POLL_FALLBACK = 100;
const LOAD_AT_START = loadavg()[0];

/** Epoch ms with sub-ms resolution, comparable across processes on one machine. */
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Kind = 'service' | 'redlock' | 'mutex' | 'redlock-mutex' | 'floor';
interface CaseSpec {
  id: string;
  label: string;
  kind: Kind;
  instances: 1 | 3;
  /** Retry delay / interval of the polling peers, ms. */
  retry?: number;
}

const CASES: CaseSpec[] = [
  { id: 'svc3', label: 'LockService `acquire`', kind: 'service', instances: 3 },
  { id: 'svc1', label: 'LockService `acquire`', kind: 'service', instances: 1 },
  {
    id: 'rl200',
    label: '@sesamecare-oss/redlock, retryDelay 200 (default)',
    kind: 'redlock',
    instances: 3,
    retry: 200,
  },
  {
    id: 'rl10',
    label: '@sesamecare-oss/redlock, retryDelay 10',
    kind: 'redlock',
    instances: 3,
    retry: 10,
  },
  {
    id: 'mx10',
    label: 'redis-semaphore Mutex, retryInterval 10 (default)',
    kind: 'mutex',
    instances: 1,
    retry: 10,
  },
  {
    id: 'mx1',
    label: 'redis-semaphore Mutex, retryInterval 1',
    kind: 'mutex',
    instances: 1,
    retry: 1,
  },
  {
    id: 'rmx10',
    label: 'redis-semaphore RedlockMutex, retryInterval 10 (default)',
    kind: 'redlock-mutex',
    instances: 3,
    retry: 10,
  },
  { id: 'floor1', label: 'raw pub/sub floor', kind: 'floor', instances: 1 },
  { id: 'floor3', label: 'raw pub/sub floor (majority)', kind: 'floor', instances: 3 },
];

interface Held {
  release(): Promise<unknown>;
}
/** One lock implementation in one process: `acquire` waits up to WAIT ms, then rejects. */
interface Contender {
  acquire(key: string): Promise<Held>;
  close(): Promise<unknown>;
}

async function connected(urls: string[]): Promise<Redis[]> {
  const clients = urls.map((u) => new Redis(u, { lazyConnect: true }));
  await Promise.all(clients.map((c) => c.connect()));
  return clients;
}

const RELEASE_AND_PUBLISH = `if redis.call("get", KEYS[1]) == ARGV[1] then
  redis.call("del", KEYS[1])
  redis.call("publish", ARGV[2], "1")
  return 1
end
return 0`;
type FloorClient = Redis & { relpub(key: string, token: string, channel: string): Promise<number> };

/**
 * The best achievable hand-off: SET NX PX on every instance (majority wins, a split is undone),
 * release by a Lua compare-and-delete that PUBLISHes; a waiter SUBSCRIBEs before its first attempt,
 * retries on every message, and polls every POLL_FALLBACK ms in case a message was missed.
 */
class PubSubFloor implements Contender {
  private readonly wakers = new Map<string, Set<() => void>>();
  private readonly subscribed = new Map<string, Promise<unknown>>();
  private readonly need: number;

  private constructor(
    private readonly cmds: FloorClient[],
    private readonly subs: Redis[],
  ) {
    this.need = Math.floor(cmds.length / 2) + 1;
    for (const s of subs) s.on('message', (ch: string) => this.wakers.get(ch)?.forEach((f) => f()));
  }

  static async create(urls: string[]): Promise<PubSubFloor> {
    const cmds = (await connected(urls)) as FloorClient[];
    for (const c of cmds) c.defineCommand('relpub', { numberOfKeys: 1, lua: RELEASE_AND_PUBLISH });
    return new PubSubFloor(cmds, await connected(urls));
  }

  private subscribe(channel: string): Promise<unknown> {
    let p = this.subscribed.get(channel);
    if (!p) {
      p = Promise.all(this.subs.map((s) => s.subscribe(channel)));
      this.subscribed.set(channel, p);
    }
    return p;
  }

  /** Resolves with the grants once a majority granted, or once every instance answered. */
  private vote(key: string, token: string): Promise<number> {
    return new Promise((resolve) => {
      let granted = 0;
      let answered = 0;
      for (const c of this.cmds) {
        void c
          .set(key, token, 'PX', TTL, 'NX')
          .then(
            (r) => r === 'OK',
            () => false,
          )
          .then((ok) => {
            answered += 1;
            if (ok) granted += 1;
            if (granted >= this.need || answered === this.cmds.length) resolve(granted);
          });
      }
    });
  }

  private release(key: string, token: string): Promise<void> {
    const channel = `${key}:released`;
    return majority(
      this.cmds.map((c) => c.relpub(key, token, channel)),
      this.need,
    );
  }

  async acquire(key: string): Promise<Held> {
    const channel = `${key}:released`;
    await this.subscribe(channel);
    const token = randomBytes(16).toString('hex');
    const deadline = performance.now() + WAIT;
    let woken = false;
    let wake: (() => void) | undefined;
    const waker = () => {
      woken = true;
      wake?.();
    };
    const set = this.wakers.get(channel) ?? new Set();
    this.wakers.set(channel, set.add(waker));
    try {
      for (;;) {
        woken = false;
        const granted = await this.vote(key, token);
        if (granted >= this.need) return { release: () => this.release(key, token) };
        // A split vote: give back what we got (this publishes, so the others retry too).
        if (granted > 0) await this.release(key, token).catch(() => undefined);
        const left = deadline - performance.now();
        if (left <= 0) throw new Error('floor: wait budget exhausted');
        if (woken) {
          if (granted > 0) await sleep(Math.random() * 2); // break the symmetry of a split
          continue;
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(POLL_FALLBACK, left));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
    } finally {
      set.delete(waker);
    }
  }

  close() {
    return Promise.all([...this.cmds, ...this.subs].map((c) => c.quit()));
  }
}

async function createContender(spec: CaseSpec, urls: string[]): Promise<Contender> {
  switch (spec.kind) {
    case 'service': {
      const app = await NestFactory.createApplicationContext(
        DistributedLockModule.forRoot({ connections: urls, logger: false }),
        { logger: false },
      );
      const locks = app.get(LockService);
      return {
        acquire: (key) => locks.acquire(key, { wait: WAIT, ttl: TTL }),
        close: () => app.close(),
      };
    }
    case 'redlock': {
      const clients = await connected(urls);
      const delay = spec.retry!;
      // Defaults are retryDelay 200, retryJitter 100, retryCount 10 (≈2 s); the count is raised so
      // that every case waits ≈WAIT ms.
      const redlock = new Redlock(clients, {
        retryDelay: delay,
        retryJitter: delay / 2,
        retryCount: Math.ceil(WAIT / delay),
      });
      // It emits 'error' for every "resource locked" vote: without a listener that throws.
      redlock.on('error', () => undefined);
      return {
        acquire: (key) => redlock.acquire([key], TTL),
        close: () => redlock.quit(),
      };
    }
    case 'mutex':
    case 'redlock-mutex': {
      const clients = await connected(urls);
      const options = { acquireTimeout: WAIT, lockTimeout: TTL, retryInterval: spec.retry };
      return {
        acquire: async (key) => {
          const m =
            spec.kind === 'mutex'
              ? new Mutex(clients[0], key, options)
              : new RedlockMutex(clients, key, options);
          await m.acquire();
          return m;
        },
        close: () => Promise.all(clients.map((c) => c.quit())),
      };
    }
    case 'floor':
      return PubSubFloor.create(urls);
  }
}

// ---------------------------------------------------------------- messages between processes

interface Sample {
  waiter: number;
  tCall: number;
  tAcq?: number;
  tRelStart?: number;
  tRel?: number;
  tFail?: number;
  error?: string;
}
type ToWorker =
  | { type: 'setup'; urls: { 1: string[]; 3: string[] }; proc: number }
  | { type: 'a-wait'; id: string; key: string }
  | { type: 'b-run'; id: string; key: string; startAt: number; until: number }
  | { type: 'exit' };
type FromWorker =
  | { type: 'ready' }
  | { type: 'a-started' }
  | { type: 'a-acquired'; t: number; error?: string }
  | { type: 'b-done'; records: Sample[] };

const errorName = (e: unknown) => (e instanceof Error ? e.constructor.name : String(e));

function worker(): void {
  const contenders = new Map<string, Contender>();
  const send = (m: FromWorker) => process.send!(m);
  let proc = 0;
  const handle = async (m: ToWorker) => {
    switch (m.type) {
      case 'setup':
        proc = m.proc;
        for (const spec of CASES) {
          const c = await createContender(spec, m.urls[spec.instances]);
          await (await c.acquire(`handoff:warm:${spec.id}:${proc}`)).release();
          contenders.set(spec.id, c);
        }
        return send({ type: 'ready' });
      case 'a-wait': {
        const pending = contenders.get(m.id)!.acquire(m.key);
        send({ type: 'a-started' });
        try {
          const held = await pending;
          const t = now();
          await held.release();
          return send({ type: 'a-acquired', t });
        } catch (e) {
          return send({ type: 'a-acquired', t: now(), error: errorName(e) });
        }
      }
      case 'b-run': {
        const c = contenders.get(m.id)!;
        const records: Sample[] = [];
        await sleep(m.startAt - now());
        await Promise.all(
          Array.from({ length: PER_PROC }, async (_, i) => {
            const waiter = proc * PER_PROC + i;
            while (now() < m.until) {
              const tCall = now();
              try {
                const held = await c.acquire(m.key);
                const tAcq = now();
                await sleep(B_HOLD);
                const tRelStart = now();
                await held.release();
                records.push({ waiter, tCall, tAcq, tRelStart, tRel: now() });
              } catch (e) {
                records.push({ waiter, tCall, tFail: now(), error: errorName(e) });
              }
            }
          }),
        );
        return send({ type: 'b-done', records });
      }
      case 'exit':
        await Promise.all([...contenders.values()].map((c) => c.close()));
        process.exit(0);
    }
  };
  process.on('message', (m: ToWorker) => {
    handle(m).catch((e: unknown) => {
      console.error(e);
      process.exit(1);
    });
  });
  process.send!({ type: 'spawned' });
}

/** A forked worker and a way to await its next message of a given type. */
class WorkerProc {
  private readonly waiting = new Map<string, Array<(m: FromWorker) => void>>();
  readonly exited: Promise<unknown>;

  constructor(readonly child: ChildProcess) {
    child.on('message', (m: FromWorker) => this.waiting.get(m.type)?.shift()?.(m));
    this.exited = new Promise((r) => child.once('exit', r));
  }

  next<T extends FromWorker['type']>(type: T): Promise<Extract<FromWorker, { type: T }>> {
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(type) ?? [];
      list.push((m) => resolve(m as Extract<FromWorker, { type: T }>));
      this.waiting.set(type, list);
      void this.exited.then(() => reject(new Error(`worker exited while waiting for ${type}`)));
    });
  }

  send(m: ToWorker): void {
    this.child.send(m);
  }
}

async function spawnWorker(): Promise<WorkerProc> {
  const child = fork(__filename, [], {
    env: {
      ...process.env,
      HANDOFF_ROLE: 'worker',
      TS_NODE_TRANSPILE_ONLY: 'true',
      TS_NODE_PROJECT: join(__dirname, '..', 'tsconfig.json'),
    },
    execArgv: ['-r', 'ts-node/register', '-r', 'tsconfig-paths/register'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  process.on('exit', () => child.kill('SIGKILL'));
  const w = new WorkerProc(child);
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    void w.exited.then(() => reject(new Error('worker exited before it was ready')));
  });
  return w;
}

// ---------------------------------------------------------------- the two scenarios

interface AResult {
  spec: CaseSpec;
  samples: number[];
  failed: string[];
}

/** (a) The holder (this process) holds A_HOLD ms after the waiter (a child) started to wait. */
async function scenarioA(spec: CaseSpec, holder: Contender, w: WorkerProc): Promise<AResult> {
  const key = `handoff:a:${spec.id}`;
  const samples: number[] = [];
  const failed: string[] = [];
  const start = performance.now();
  const WARM = 3;
  for (let i = 0; ; i += 1) {
    const elapsed = performance.now() - start;
    const n = i - WARM;
    if (n >= 300 || elapsed > 3 * A_MS || (elapsed > A_MS && n >= 20)) break;
    const held = await holder.acquire(key);
    const started = w.next('a-started');
    const acquired = w.next('a-acquired');
    w.send({ type: 'a-wait', id: spec.id, key });
    await started;
    await sleep(A_HOLD);
    await held.release();
    const tRel = now();
    const r = await acquired;
    if (i < WARM) continue;
    if (r.error) failed.push(r.error);
    else samples.push(r.t - tRel);
  }
  return { spec, samples, failed };
}

interface BResult {
  spec: CaseSpec;
  /** Every grant: the next holder's acquisition minus the previous holder's release. */
  gaps: number[];
  /** Per release: until a caller already waiting then holds the lock. */
  handoffs: number[];
  /** Grants to a caller that arrived after the release (the releaser itself, looping), ahead of waiters. */
  barged: number;
  perWaiter: number[];
  waits: number[];
  worstWaits: number[];
  failed: number;
  starved: number;
  overlaps: number;
  rate: number;
}

/** (b) PROCS × PER_PROC waiters on one key, each acquire → hold B_HOLD ms → release, for B_MS. */
async function scenarioB(spec: CaseSpec, workers: WorkerProc[]): Promise<BResult> {
  const key = `handoff:b:${spec.id}`;
  const startAt = now() + 200;
  const until = startAt + B_MS;
  const done = workers.map((w) => w.next('b-done'));
  for (const w of workers) w.send({ type: 'b-run', id: spec.id, key, startAt, until });
  const records = (await Promise.all(done)).flatMap((d) => d.records);
  const ok = records.filter((r) => r.tAcq !== undefined).sort((x, y) => x.tAcq! - y.tAcq!);
  const gaps: number[] = [];
  const handoffs: number[] = [];
  let barged = 0;
  let overlaps = 0;
  for (let k = 1; k < ok.length; k += 1) {
    if (ok[k].tAcq! < ok[k - 1].tRelStart!) overlaps += 1; // granted before the holder let go
    if (ok[k].tAcq! > until) continue;
    gaps.push(ok[k].tAcq! - ok[k - 1].tRel!);
    if (ok[k].tCall >= ok[k - 1].tRel!) barged += 1;
  }
  // For each release: time until one of the callers already waiting then holds the lock (barged
  // holds in between count as delay). Each waiter has one call at a time, so the first later grant
  // whose call started before this release is that moment.
  for (let j = 0; j < ok.length - 1; j += 1) {
    if (ok[j].tRel! > until) break;
    const next = ok.slice(j + 1).find((r) => r.tCall < ok[j].tRel!);
    if (next) handoffs.push(next.tAcq! - ok[j].tRel!);
  }
  const waiters = PROCS * PER_PROC;
  const perWaiter = Array.from({ length: waiters }, (_, i) => ok.filter((r) => r.waiter === i));
  const fails = records.filter((r) => r.tFail !== undefined);
  // Starved: a FIFO queue would have served it, since every other waiter got a turn meanwhile.
  const starved = fails.filter(
    (f) => ok.filter((r) => r.tAcq! >= f.tCall && r.tAcq! <= f.tFail!).length >= waiters - 1,
  ).length;
  const span = Math.max(...records.map((r) => r.tRel ?? r.tFail!)) - startAt;
  return {
    spec,
    gaps,
    handoffs,
    barged,
    perWaiter: perWaiter.map((rs) => rs.length),
    waits: ok.map((r) => r.tAcq! - r.tCall),
    // The longest single call per waiter, successful or not (a waiter that never got it counts too).
    worstWaits: Array.from({ length: waiters }, (_, i) =>
      Math.max(
        0,
        ...records.filter((r) => r.waiter === i).map((r) => (r.tAcq ?? r.tFail!) - r.tCall),
      ),
    ),
    failed: fails.length,
    starved,
    overlaps,
    rate: ok.length / (span / 1000),
  };
}

// ---------------------------------------------------------------- report

const ms = (v: number) =>
  Number.isNaN(v) ? '–' : Math.abs(v) < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0);
const stats = (xs: number[]) =>
  [0.5, 0.9, 0.99].map((q) => ms(quantile(xs, q))).join(' | ') +
  ` | ${xs.length ? ms(Math.max(...xs)) : '–'}`;
const median = (xs: number[]) => quantile(xs, 0.5);

/** Replaces (or adds) the section between `<!-- name:start -->` and `<!-- name:end -->`. */
export async function writeSection(name: string, body: string): Promise<string> {
  const file = join(__dirname, '..', 'docs', 'HANDOFF.md');
  mkdirSync(join(__dirname, '..', 'docs'), { recursive: true });
  let text = existsSync(file)
    ? readFileSync(file, 'utf8')
    : '# Lock hand-off and burst benchmarks\n\nGenerated by `npm run bench:handoff` (bench/handoff.ts, then bench/burst.ts). Issue #8.\n';
  const [start, end] = [`<!-- ${name}:start -->`, `<!-- ${name}:end -->`];
  const block = `${start}\n\n${body}\n\n${end}`;
  const at = text.indexOf(start);
  const to = text.indexOf(end);
  text =
    at >= 0 && to > at
      ? text.slice(0, at) + block + text.slice(to + end.length)
      : `${text.trimEnd()}\n\n${block}\n`;
  const formatted = await format(text, { ...(await resolveConfig(file)), parser: 'markdown' });
  writeFileSync(file, formatted);
  return formatted;
}

/** Machine facts for the report header. */
export function machine(): string {
  const nproc = spawnSync('nproc', { encoding: 'utf8' }).stdout?.trim() || String(cpus().length);
  const redis = /v=(\S+)/.exec(
    spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout,
  )?.[1];
  const load = LOAD_AT_START.toFixed(2);
  return `\`nproc\` ${nproc} (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}, redis-server ${redis ?? 'unknown'}, loopback, 1-min load average ${load} at start, ${new Date().toISOString().slice(0, 10)}`;
}

function report(a: AResult[], b: BResult[]): string {
  const inst = (s: CaseSpec) => `${s.instances}`;
  const goal = (p50: number, p90: number) =>
    p50 <= 2 && p90 <= 5 ? 'met' : `not met (p50 ${ms(p50)} ms, p90 ${ms(p90)} ms)`;
  const isPeer = (s: CaseSpec) => s.kind !== 'service' && s.kind !== 'floor';
  const ahead = (p50s: Array<[CaseSpec, number]>) => {
    const svc = p50s.find(([s]) => s.id === 'svc3')![1];
    const peers = p50s.filter(([s]) => isPeer(s)).sort((x, y) => x[1] - y[1]);
    const best = peers[0];
    return svc < best[1]
      ? 'yes'
      : `no (best peer: ${best[0].label}, ${best[0].instances} instance(s), p50 ${ms(best[1])} ms)`;
  };
  const a3 = a.find((r) => r.spec.id === 'svc3')!;
  const b3 = b.find((r) => r.spec.id === 'svc3')!;
  return [
    '## Hand-off',
    '',
    `Machine: ${machine()}.`,
    '',
    '### Method',
    '',
    `Hand-off = from the holder's \`release()\` resolving to the next waiter's acquisition resolving, both stamped with \`performance.timeOrigin + performance.now()\` (comparable across processes). Local \`redis-server\` processes on free ports (1 and 3 instances), no persistence. Every waiter waits up to ${WAIT} ms with TTL ${TTL} ms: LockService \`acquire(key, { wait: ${WAIT}, ttl: ${TTL} })\` with the module's default retry (backoff from 50 ms, doubling, capped at 1 s, ±25 % jitter); \`@sesamecare-oss/redlock\` 1.4.0 with \`retryJitter\` = half the delay (its default pair is 200/100) and \`retryCount\` raised to ⌈${WAIT}/delay⌉ so it also waits ≈${WAIT} ms (its default count of 10 gives ≈2 s); \`redis-semaphore\` Mutex / RedlockMutex with \`acquireTimeout ${WAIT}\`, \`lockTimeout ${TTL}\`. The raw pub/sub floor: SET NX PX on every instance (majority wins, a split vote is undone), release by a Lua compare-and-delete that PUBLISHes; the waiter SUBSCRIBEs before its first attempt, retries on every message and polls every ${POLL_FALLBACK} ms as a fallback. A negative hand-off means the waiter was granted the lock before the holder's release() had collected its own replies. All cases run one after another in one run, on a shared ${cpus().length}-core machine that also runs the Redis servers and the workers.`,
    '',
    `**(a) 1 waiter in another process.** The holder (main process) takes the lock, tells the waiter (a child process) to \`acquire\`, holds ${A_HOLD} ms after the waiter's call was issued, releases. ${A_MS} ms per case (at least 20 and at most 300 samples after 3 warm-up rounds).`,
    '',
    `**(b) ${PROCS * PER_PROC} waiters in ${PROCS} processes** (${PER_PROC} each) on one hot key, each looping acquire → hold ${B_HOLD} ms → release for ${B_MS} ms (acquisitions already waiting at the end finish). Acquisitions are sorted by time; each one minus the previous holder's release is the lock's idle gap. The *hand-off to a waiter* of a release is the time from it until one of the callers already waiting at that moment holds the lock; a *barged* grant went to a caller that arrived after the previous release (usually the releaser looping straight back) while others were waiting, and its hold counts as delay in the hand-off. Fairness: acquisitions per waiter (min / median / max over the ${PROCS * PER_PROC} waiters), the wait from calling \`acquire\` to holding (p50 over all acquisitions, worst per waiter: median and max). "Starved": acquisitions that failed although every other waiter got the lock during that wait, i.e. a FIFO queue would have served them within the budget. "Overlaps": grants before the previous holder had started its release (must be 0).`,
    '',
    '### (a) 1 waiter, hand-off ms',
    '',
    '| case | instances | n | p50 | p90 | p99 | max | failed |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...a.map(
      (r) =>
        `| ${r.spec.label} | ${inst(r.spec)} | ${r.samples.length} | ${stats(r.samples)} | ${r.failed.length ? `${r.failed.length} (${[...new Set(r.failed)].join(', ')})` : 0} |`,
    ),
    '',
    `### (b) ${PROCS * PER_PROC} waiters in ${PROCS} processes, hand-off ms`,
    '',
    '| case | instances | releases with waiters | p50 | p90 | p99 | max | barged grants | idle gap, all grants p50 / p90 | acquisitions/s |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...b.map(
      (r) =>
        `| ${r.spec.label} | ${inst(r.spec)} | ${r.handoffs.length} | ${stats(r.handoffs)} | ${r.barged} of ${r.gaps.length} (${Math.round((100 * r.barged) / Math.max(1, r.gaps.length))} %) | ${ms(quantile(r.gaps, 0.5))} / ${ms(quantile(r.gaps, 0.9))} | ${Math.round(r.rate)} |`,
    ),
    '',
    `### (b) fairness`,
    '',
    '| case | instances | acquisitions per waiter min / median / max | wait p50 ms | worst wait per waiter median / max ms | failed | starved | overlaps |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...b.map(
      (r) =>
        `| ${r.spec.label} | ${inst(r.spec)} | ${Math.min(...r.perWaiter)} / ${median(r.perWaiter)} / ${Math.max(...r.perWaiter)} | ${ms(median(r.waits))} | ${ms(median(r.worstWaits))} / ${ms(Math.max(...r.worstWaits))} | ${r.failed} | ${r.starved} | ${r.overlaps} |`,
    ),
    '',
    '### Issue #8 goals (LockService, 3 instances)',
    '',
    `- p50 ≤ 2 ms and p90 ≤ 5 ms, 1 waiter: ${goal(quantile(a3.samples, 0.5), quantile(a3.samples, 0.9))}`,
    `- p50 ≤ 2 ms and p90 ≤ 5 ms, ${PROCS * PER_PROC} waiters: ${goal(quantile(b3.handoffs, 0.5), quantile(b3.handoffs, 0.9))}`,
    `- ahead of every peer (p50), 1 waiter: ${ahead(a.map((r) => [r.spec, quantile(r.samples, 0.5)]))}`,
    `- ahead of every peer (p50), ${PROCS * PER_PROC} waiters: ${ahead(b.map((r) => [r.spec, quantile(r.handoffs, 0.5)]))}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const fleets = { 1: await RedisFleet.start(1), 3: await RedisFleet.start(3) };
  const urls = { 1: fleets[1].urls, 3: fleets[3].urls };
  const workers: WorkerProc[] = [];
  const holders = new Map<string, Contender>();
  try {
    workers.push(...(await Promise.all(Array.from({ length: PROCS }, () => spawnWorker()))));
    const ready = workers.map((w) => w.next('ready'));
    workers.forEach((w, proc) => w.send({ type: 'setup', urls, proc }));
    for (const spec of CASES)
      holders.set(spec.id, await createContender(spec, urls[spec.instances]));
    await Promise.all(ready);
    const a: AResult[] = [];
    for (const spec of CASES) {
      a.push(await scenarioA(spec, holders.get(spec.id)!, workers[0]));
      console.log(
        `(a) ${spec.label} ×${spec.instances}: p50 ${ms(quantile(a.at(-1)!.samples, 0.5))} ms`,
      );
    }
    const b: BResult[] = [];
    for (const spec of CASES) {
      b.push(await scenarioB(spec, workers));
      console.log(
        `(b) ${spec.label} ×${spec.instances}: p50 ${ms(quantile(b.at(-1)!.handoffs, 0.5))} ms`,
      );
    }
    const body = report(a, b);
    await writeSection('handoff', body);
    console.log(body);
  } finally {
    for (const w of workers) w.send({ type: 'exit' });
    await Promise.race([Promise.all(workers.map((w) => w.exited)), sleep(5_000)]);
    await Promise.all([...holders.values()].map((h) => h.close()));
    await fleets[1].stop();
    await fleets[3].stop();
  }
}

if (require.main === module) {
  if (process.env.HANDOFF_ROLE === 'worker') worker();
  else
    main().catch((e: unknown) => {
      console.error(e);
      process.exit(1);
    });
}
