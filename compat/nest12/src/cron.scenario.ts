import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { check, sleep, within } from './support.js';

const REPLICAS = 3;
const WINDOW_MS = 5_000;
/** The jobs of cron-replica.ts: `@Exclusive()` written below and above `@Cron`. */
const JOBS = ['below', 'above'];
const replicaScript = fileURLToPath(new URL('./cron-replica.js', import.meta.url));

interface Replica {
  name: string;
  child: ChildProcess;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(name: string, env: Record<string, string>): Replica {
  const child = fork(replicaScript, [], {
    env: { ...process.env, ...env, REPLICA: name, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const output: string[] = [];
  const collect = (chunk: Buffer) => output.push(...chunk.toString().split('\n').filter(Boolean));
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { name, child, output, exited };
}

async function ready(r: Replica): Promise<void> {
  await within(
    30_000,
    `replica ${r.name} start`,
    new Promise<void>((resolve, reject) => {
      r.child.once('message', () => resolve());
      void r.exited.then(({ code }) =>
        reject(
          new Error(`replica ${r.name} exited (${code}) before ready:\n${r.output.join('\n')}`),
        ),
      );
    }),
  );
}

/**
 * (b) An `@Exclusive()` `@Cron('* * * * * *')` job in 3 replica processes on the same Redis: each
 * whole tick while all of them run is executed exactly once in total, and no tick ever twice.
 */
export async function cronScenario(connections: string[], run: string): Promise<string> {
  const env = { REDIS_URLS: connections.join(','), RUN: run };
  const replicas = Array.from({ length: REPLICAS }, (_, i) => start(`r${i}`, env));
  const records = new Redis(connections[0], { maxRetriesPerRequest: 1 });
  try {
    await Promise.all(replicas.map(ready));
    const from = Math.ceil((Date.now() + 50) / 1000);
    await sleep(WINDOW_MS);
    // The last tick has had 300 ms to record its 20 ms run.
    const to = Math.floor((Date.now() - 300) / 1000);
    for (const r of replicas) r.child.kill('SIGTERM');
    const exits = await within(
      10_000,
      'replica shutdown on SIGTERM',
      Promise.all(replicas.map((r) => r.exited)),
    );

    const errors = replicas.flatMap((r) =>
      r.output.filter((l) => /\bERROR\b/.test(l)).map((l) => `[${r.name}] ${l}`),
    );
    check(errors.length === 0, `replicas logged errors:\n${errors.join('\n')}`);
    const unclean = exits.filter((e) => !(e.code === 0 || e.signal === 'SIGTERM'));
    check(
      unclean.length === 0,
      `replicas did not exit cleanly on SIGTERM: ${JSON.stringify(exits)}`,
    );
    const window = Array.from({ length: to - from + 1 }, (_, i) => from + i);
    check(window.length >= 4, `only ${window.length} whole ticks in the window`);

    const spread: string[] = [];
    for (const job of JOBS) {
      const execs = await records.hgetall(`${run}:execs:${job}`);
      const counts = window.map((t) => Number(execs[String(t)] ?? 0));
      check(
        counts.every((n) => n === 1),
        `job '${job}': runs per tick ${window.map((t, i) => `${t}:${counts[i]}`).join(' ')} (want 1 each)`,
      );
      const doubled = Object.entries(execs).filter(([, n]) => Number(n) > 1);
      check(
        doubled.length === 0,
        `job '${job}': ticks run more than once: ${JSON.stringify(doubled)}`,
      );
      const who = new Map<string, number>();
      for (const t of window)
        for (const name of await records.lrange(`${run}:who:${job}:${t}`, 0, -1))
          who.set(name, (who.get(name) ?? 0) + 1);
      spread.push(`${job}: ${[...who].map(([name, n]) => `${name}x${n}`).join(' ')}`);
    }
    return (
      `${REPLICAS} replicas, ${window.length} ticks, each run exactly once by ` +
      `@Exclusive below and above @Cron (runs by replica: ${spread.join('; ')})`
    );
  } finally {
    for (const r of replicas)
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    records.disconnect();
  }
}
