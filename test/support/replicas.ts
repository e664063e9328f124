import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Redis } from 'ioredis';

/** A child process running `test/support/<script>.ts` with ts-node, as one replica. */
export interface Replica {
  child: ChildProcess;
  exited: Promise<number | null>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** Forks a replica and resolves once it reported 'ready' (its app is initialised). */
export async function startReplica(
  script: string,
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<Replica> {
  const child = fork(join(__dirname, `${script}.ts`), [], {
    env: {
      ...process.env,
      ...env,
      TS_NODE_TRANSPILE_ONLY: 'true',
      TS_NODE_PROJECT: join(__dirname, '../../tsconfig.json'),
    },
    execArgv: ['-r', 'ts-node/register', '-r', 'tsconfig-paths/register'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  live.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      live.delete(child);
      resolve(code);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`replica ${script} not ready in ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.once('message', () => {
      clearTimeout(timer);
      resolve();
    });
    void exited.then((code) =>
      reject(new Error(`replica ${script} exited with ${code} before it was ready`)),
    );
  });
  return { child, exited };
}

/** SIGTERM (graceful) or SIGKILL, then wait for exit. */
export async function stopReplica(
  r: Replica,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<number | null> {
  if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill(signal);
  return r.exited;
}

/**
 * Runs per tick second of `job` recorded by the cron replicas (`HINCRBY execs:<job> <second> 1`),
 * for the ticks in [from, to].
 */
export async function perTick(
  records: Redis,
  job: string,
  from: number,
  to: number,
): Promise<number[]> {
  const hash = await records.hgetall(`execs:${job}`);
  const out: number[] = [];
  for (let t = from; t <= to; t += 1) out.push(Number(hash[String(t)] ?? 0));
  return out;
}
