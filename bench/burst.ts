/**
 * `npm run bench:handoff` (second half): many `tryAcquire` calls issued in one tick against three
 * healthy instances, and how fast a burst fails with 2 of 3 instances SIGSTOPped (issue #8).
 * Writes the "Burst" section of docs/HANDOFF.md. Uses only the public API of the library.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { performance } from 'node:perf_hooks';
import {
  DistributedLockModule,
  LockService,
  LockUnavailableError,
  type Lock,
} from '../libs/distributed-lock/src';
import { RedisFleet } from '../test/support/redis-fleet';
import { machine, writeSection } from './handoff';

const SIZES = [10_000, 5_000];
const REPEAT = 3;
const OUTAGE_CALLS = 1_000;
const PREVIOUS = { 10_000: 5_285, 5_000: 175 } as Record<number, number>;

interface Burst {
  n: number;
  acquired: number;
  busy: number;
  unavailable: number;
  other: Map<string, number>;
  totalMs: number;
  firstFailMs?: number;
  lastFailMs?: number;
  /** How the instances voted on the unavailable calls: "granted/held/failed" → count. */
  votes: Map<string, number>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const int = (v: number) => Math.round(v).toLocaleString('en-US');

/** `n` tryAcquire calls on distinct keys, all issued before the first reply can arrive. */
async function burst(locks: LockService, n: number, tag: string): Promise<Burst> {
  const r: Burst = {
    n,
    acquired: 0,
    busy: 0,
    unavailable: 0,
    other: new Map(),
    totalMs: 0,
    votes: new Map(),
  };
  const held: Lock[] = [];
  const t0 = performance.now();
  const calls = Array.from({ length: n }, (_, i) =>
    locks.tryAcquire(`burst:${tag}:${i}`).then(
      (lock) => {
        if (lock) {
          held.push(lock);
          r.acquired += 1;
        } else r.busy += 1;
      },
      (e: unknown) => {
        const t = performance.now() - t0;
        r.firstFailMs ??= t;
        r.lastFailMs = t;
        if (e instanceof LockUnavailableError) {
          r.unavailable += 1;
          const v = e.votes;
          const shape = v ? `${v.granted} granted, ${v.held} held, ${v.failed} failed` : 'no votes';
          r.votes.set(shape, (r.votes.get(shape) ?? 0) + 1);
        } else {
          const name = e instanceof Error ? e.constructor.name : String(e);
          r.other.set(name, (r.other.get(name) ?? 0) + 1);
        }
      },
    ),
  );
  await Promise.all(calls);
  r.totalMs = performance.now() - t0;
  // Give the keys back (untimed), in slices so the release itself does not time out.
  for (let i = 0; i < held.length; i += 500) {
    await Promise.allSettled(held.slice(i, i + 500).map((l) => l.release()));
  }
  return r;
}

async function main(): Promise<void> {
  const fleet = await RedisFleet.start(3);
  const app = await NestFactory.createApplicationContext(
    DistributedLockModule.forRoot({ connections: fleet.urls, logger: false }),
    { logger: false },
  );
  const locks = app.get(LockService);
  const healthy: Burst[] = [];
  const outage: Burst[] = [];
  let recoveredMs = Number.NaN;
  try {
    await burst(locks, 200, 'warm');
    for (let round = 0; round < REPEAT; round += 1) {
      for (const n of SIZES) {
        healthy.push(await burst(locks, n, `${n}:${round}`));
        const last = healthy.at(-1)!;
        console.log(`${n}: ${last.unavailable} unavailable, ${Math.round(last.totalMs)} ms`);
        await sleep(1_000);
      }
    }
    fleet.nodes[1].pause();
    fleet.nodes[2].pause();
    try {
      for (let batch = 0; batch < 2; batch += 1) {
        outage.push(await burst(locks, OUTAGE_CALLS, `outage:${batch}`));
      }
    } finally {
      fleet.nodes[1].resume();
      fleet.nodes[2].resume();
    }
    const t0 = performance.now();
    while (performance.now() - t0 < 10_000) {
      const lock = await locks.tryAcquire('burst:recovered').catch(() => null);
      if (lock) {
        recoveredMs = performance.now() - t0;
        await lock.release();
        break;
      }
      await sleep(10);
    }
  } finally {
    await app.close();
    await fleet.stop();
  }

  const others = (b: Burst) =>
    b.other.size ? [...b.other].map(([k, v]) => `${v} ${k}`).join(', ') : '0';
  const fail = (v?: number) => (v === undefined ? '–' : int(v));
  const votes = (bs: Burst[]) => {
    const all = new Map<string, number>();
    for (const b of bs) for (const [k, v] of b.votes) all.set(k, (all.get(k) ?? 0) + v);
    return [...all].map(([k, v]) => `${int(v)} × (${k})`).join('; ') || 'none';
  };
  const summary = SIZES.map((n) => {
    const runs = healthy.filter((b) => b.n === n).map((b) => b.unavailable);
    const mean = runs.reduce((a, b) => a + b, 0) / runs.length;
    return `${int(n)} calls: ${runs.map(int).join(', ')} LockUnavailableError (mean ${int(mean)}; last round reported ${int(PREVIOUS[n])})`;
  });
  const body = [
    '## Burst',
    '',
    `Machine: ${machine()}.`,
    '',
    `### Method`,
    '',
    `One \`LockService\` with default options (\`DistributedLockModule.forRoot({ connections, logger: false })\`: command timeout 500 ms, fail-fast clients) on 3 local \`redis-server\` instances. A burst is N \`tryAcquire(key)\` calls on distinct keys, all issued in one tick; "total ms" runs from issuing the first call to the last one settling. Acquired locks are released afterwards, untimed, and the next burst starts 1 s later; ${REPEAT} rounds of ${SIZES.map(int).join(' and ')} interleaved. Outage: 2 of the 3 instances SIGSTOPped (their sockets stay open, nothing answers), then ${int(OUTAGE_CALLS)} calls in one tick, twice in a row; "first / last failure" is when the first and the last call rejected, from the moment the burst was issued.`,
    '',
    '### Healthy instances',
    '',
    '| calls in one tick | acquired | busy (null) | LockUnavailableError | other | total ms | first failure at ms |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...healthy.map(
      (b) =>
        `| ${int(b.n)} | ${int(b.acquired)} | ${b.busy} | ${int(b.unavailable)} | ${others(b)} | ${int(b.totalMs)} | ${fail(b.firstFailMs)} |`,
    ),
    '',
    ...summary.map((s) => `- ${s}`),
    '',
    '### 2 of 3 instances SIGSTOPped',
    '',
    '| batch | calls | acquired | LockUnavailableError | other | first failure ms | last failure ms |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    ...outage.map(
      (b, i) =>
        `| ${i + 1} | ${int(b.n)} | ${b.acquired} | ${int(b.unavailable)} | ${others(b)} | ${fail(b.firstFailMs)} | ${fail(b.lastFailMs)} |`,
    ),
    '',
    `After SIGCONT the first \`tryAcquire\` succeeded ${Number.isNaN(recoveredMs) ? 'not within 10 s' : `after ${int(recoveredMs)} ms`}.`,
    '',
    `How the 3 instances voted on the calls that failed with LockUnavailableError (\`error.votes\`): healthy bursts ${votes(healthy)}; outage ${votes(outage)}.`,
  ].join('\n');
  await writeSection('burst', body);
  console.log(body);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
