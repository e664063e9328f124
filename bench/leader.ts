/**
 * `npm run bench:leader`: leader failover (issue 17) with child-process replicas
 * (test/support/leader-replica.ts, a `@Leader` worker writing a fenced record every 20 ms) on 3
 * local Redis instances and on PostgreSQL. Three replicas run; the leader is stopped, and the time
 * from the signal to the first record of the next term is measured:
 * - SIGTERM: the leader's signal aborts ('shutdown'), its method returns, the lease is released and
 *   announced, a waiting replica takes it (goal: p50 within 2 store round trips + the method's own
 *   return, which is up to one 20 ms write interval here);
 * - SIGKILL: nothing is released; the lease runs out (at most the TTL after the last extension) and
 *   a waiter polling it (every TTL / 5 at most) takes over (goal: <= TTL + one poll).
 * The stopped replica is replaced before the next round. Writes the "Leader election" section of
 * docs/BENCHMARKS.md between its markers (the other benches keep theirs).
 */
import 'reflect-metadata';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { Pool } from 'pg';
import { PostgresServer } from '../test/support/postgres-server';
import { RedisFleet } from '../test/support/redis-fleet';
import { startReplica, stopReplica, type Replica } from '../test/support/replicas';
import { quantile } from './harness';

const TERMS = Number(process.env.LEADER_TERMS ?? 8);
const KILLS = Number(process.env.LEADER_KILLS ?? 4);
const TTL = Number(process.env.LEADER_TTL ?? 2_000);
export const START = '<!-- bench:leader start -->';
export const END = '<!-- bench:leader end -->';

interface LeaderRecord {
  who: string;
  term: number;
  at: number;
}

interface Result {
  store: string;
  roundTripMs: number;
  sigterm: number[];
  sigkill: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(
  store: string,
  env: Record<string, string>,
  records: Redis,
  roundTrip: () => Promise<unknown>,
): Promise<Result> {
  const name = `bench-leader-${store}`;
  await records.del(
    `${name}:hi`,
    `${name}:records`,
    `${name}:rejected`,
    `${name}:rejected-records`,
  );
  let seq = 0;
  const live = new Map<string, Replica>();
  const spawn = async () => {
    const id = `${store}-${(seq += 1)}`;
    live.set(
      id,
      await startReplica('leader-replica', { ...env, NAME: name, TTL: String(TTL), REPLICA: id }),
    );
  };
  const last = async (): Promise<LeaderRecord | undefined> => {
    const raw = await records.lindex(`${name}:records`, -1);
    return raw === null ? undefined : (JSON.parse(raw) as LeaderRecord);
  };
  const next = async (term: number): Promise<LeaderRecord> => {
    const deadline = performance.now() + TTL * 5;
    for (;;) {
      const tail = (await records.lrange(`${name}:records`, -200, -1)).map(
        (r) => JSON.parse(r) as LeaderRecord,
      );
      const found = tail.find((r) => r.term > term);
      if (found) return found;
      if (performance.now() > deadline) throw new Error(`${store}: no new leader after ${term}`);
      await sleep(5);
    }
  };

  const samples: number[] = [];
  for (let i = 0; i < 20; i += 1) {
    const t = performance.now();
    await roundTrip();
    samples.push(performance.now() - t);
  }
  const roundTripMs = quantile(samples, 0.5);

  await Promise.all([spawn(), spawn(), spawn()]);
  while ((await last()) === undefined) await sleep(20);
  const sigterm: number[] = [];
  const sigkill: number[] = [];
  for (let i = 0; i < TERMS + KILLS; i += 1) {
    const signal: NodeJS.Signals = i < TERMS ? 'SIGTERM' : 'SIGKILL';
    await sleep(300);
    const leader = (await last())!;
    const replica = live.get(leader.who)!;
    const at = Date.now();
    const stopped = stopReplica(replica, signal);
    const first = await next(leader.term);
    (signal === 'SIGTERM' ? sigterm : sigkill).push(first.at - at);
    await stopped;
    live.delete(leader.who);
    await spawn();
  }
  await Promise.all([...live.values()].map((r) => stopReplica(r, 'SIGTERM')));
  const rejected = Number((await records.get(`${name}:rejected`)) ?? 0);
  if (rejected > 1) throw new Error(`${store}: ${rejected} stale writes rejected`);
  return { store, roundTripMs, sigterm, sigkill };
}

async function main(): Promise<void> {
  const recordsFleet = await RedisFleet.start(1);
  const records = new Redis(recordsFleet.urls[0]);
  const env = { RECORDS_URL: recordsFleet.urls[0] };
  const results: Result[] = [];
  try {
    const fleet = await RedisFleet.start(3);
    const probe = new Redis(fleet.urls[0]);
    try {
      results.push(
        await run(
          'redis-3',
          { ...env, BACKEND: 'redis', REDIS_URLS: fleet.urls.join(',') },
          records,
          () => probe.ping(),
        ),
      );
    } finally {
      probe.disconnect();
      await fleet.stop();
    }
    const server = await PostgresServer.start();
    const pool = new Pool({ connectionString: server.connectionString, max: 1 });
    try {
      results.push(
        await run(
          'postgres',
          { ...env, BACKEND: 'postgres', PG_URL: server.connectionString },
          records,
          () => pool.query('SELECT 1'),
        ),
      );
    } finally {
      await pool.end();
      await server.stop();
    }
  } finally {
    records.disconnect();
    await recordsFleet.stop();
  }

  const f = (ms: number) => ms.toFixed(0);
  const row = (r: Result, what: string, s: number[], goal: string) =>
    `| ${r.store} | ${what} | ${s.length} | ${f(quantile(s, 0.5))} | ${f(quantile(s, 0.9))} | ${f(Math.max(...s))} | ${goal} |`;
  const section = [
    START,
    '',
    `Generated by \`npm run bench:leader\` on ${new Date().toISOString().slice(0, 10)} (${cpus().length} cores, Node ${process.version}). Three child-process replicas with one \`@Leader\` worker each (test/support/leader-replica.ts: a fenced write every 20 ms while leading), TTL ${TTL} ms; the leader is stopped and the time from the signal to the next leader's first write is measured (same machine clock). The stopped replica is replaced before the next round. Round trip: the median of 20 \`PING\` / \`SELECT 1\` from this process.`,
    '',
    '| store | leader stopped by | n | p50 ms | p90 ms | max ms | goal |',
    '|---|---|---:|---:|---:|---:|---|',
    ...results.flatMap((r) => [
      row(
        r,
        'SIGTERM (release + announcement)',
        r.sigterm,
        `2 round trips (${(2 * r.roundTripMs).toFixed(1)} ms) + the method's return (≤ 20 ms write interval)`,
      ),
      row(r, 'SIGKILL (lease runs out)', r.sigkill, `≤ TTL + one poll (${TTL + TTL / 5} ms)`),
    ]),
    '',
    "SIGTERM failover also contains Nest shutting the stopped app down (the drain steps the leader down first) and the new leader's own grant and first write; SIGKILL failover is below the TTL when the lease had been extended shortly before the kill (extensions run at half the TTL).",
    '',
    END,
  ].join('\n');
  const file = join(__dirname, '..', 'docs', 'BENCHMARKS.md');
  const doc = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  const updated =
    start >= 0 && end > start
      ? doc.slice(0, start) + section + doc.slice(end + END.length)
      : `${doc.trimEnd()}\n\n## Leader election\n\n${section}\n`;
  writeFileSync(file, updated);
  console.log(section);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
