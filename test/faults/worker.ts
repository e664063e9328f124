/**
 * A fault-suite worker: its own process with a bare LockService, doing locked critical sections on
 * a separate "resource" Redis that checks them (ShedLock / Jepsen style):
 * - occupancy: INCR occ must return 1 inside the lock;
 * - lost update: GET counter, short random sleep, SET counter+1 (the end value must equal the runs);
 * - fenced store: a write is accepted only if its fencing token is >= the highest seen.
 * Commands arrive over IPC; results go back the same way.
 */
import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { emptyStats, FENCED_WRITE, OCCUPY } from './checkers';
import {
  DistributedLockModule,
  LockService,
  LockUnavailableError,
  LockBusyError,
} from '@app/distributed-lock';
import { LockManager } from '@app/distributed-lock/lock-manager';

interface RunCommand {
  op: 'run';
  runs: number;
  key: string;
  ttl: number;
  autoExtend: boolean;
  workMs: number;
  wait: number;
  /** Up to `limit` holders at once (a concurrency limit); the checks are then per permit. */
  limit?: number;
}
interface HoldCommand {
  op: 'hold';
  key: string;
  ttl: number;
  limit?: number;
}
type Command = RunCommand | HoldCommand | { op: 'health' } | { op: 'exit' };

const resource = new Redis(process.env.RESOURCE_URL!, { maxRetriesPerRequest: 1 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fencedWrite = async (key: string, token: number) =>
  (await resource.eval(FENCED_WRITE, 1, `fence-store:${key}`, token)) === 1;

async function main(): Promise<void> {
  const app = await Test.createTestingModule({
    imports: [
      DistributedLockModule.forRoot({
        connections: process.env.REDIS_URLS!.split(','),
        logger: false,
      }),
    ],
  }).compile();
  await app.init();
  const locks = app.get(LockService);
  const backend = app.get(LockManager, { strict: false }).backend;

  /**
   * A limited section: OCCUPY must return at most `limit` (the highest count is kept in
   * `occ-max:<key>` for the suite), and each permit's fenced store accepts its holder's token.
   */
  const limited = async (c: RunCommand & { limit: number }) => {
    const stats = emptyStats();
    for (let i = 0; i < c.runs; i += 1) {
      const t0 = performance.now();
      try {
        await locks.runExclusive(
          c.key,
          async (lock) => {
            const inside = await resource.eval(OCCUPY, 2, `occ:${c.key}`, `occ-max:${c.key}`);
            if (Number(inside) > c.limit) stats.violations += 1;
            await sleep(Math.random() * c.workMs);
            if (!(await fencedWrite(`${c.key}:${lock.permit}`, lock.fencingToken))) {
              stats.rejected += 1;
            }
            await resource.decr(`occ:${c.key}`);
            stats.runs += 1;
          },
          {
            ttl: c.ttl,
            autoExtend: c.autoExtend,
            wait: c.wait,
            limit: c.limit,
            retry: { delay: 2, maxDelay: 50 },
          },
        );
      } catch (e) {
        if (e instanceof LockUnavailableError) {
          stats.unavailable += 1;
          stats.unavailableMs.push(performance.now() - t0);
        } else if (e instanceof LockBusyError) stats.busy += 1;
        else stats.errors += 1;
      }
    }
    return stats;
  };

  const run = async (c: RunCommand) => {
    if (c.limit !== undefined && c.limit > 1) return limited({ ...c, limit: c.limit });
    const stats = emptyStats();
    for (let i = 0; i < c.runs; i += 1) {
      const t0 = performance.now();
      try {
        await locks.runExclusive(
          c.key,
          async (lock) => {
            if ((await resource.incr(`occ:${c.key}`)) !== 1) stats.violations += 1;
            const v = Number((await resource.get(`ctr:${c.key}`)) ?? 0);
            await sleep(Math.random() * c.workMs);
            await resource.set(`ctr:${c.key}`, v + 1);
            if (!(await fencedWrite(c.key, lock.fencingToken))) stats.rejected += 1;
            await resource.decr(`occ:${c.key}`);
            stats.runs += 1;
          },
          { ttl: c.ttl, autoExtend: c.autoExtend, wait: c.wait, retry: { delay: 2, maxDelay: 50 } },
        );
      } catch (e) {
        if (e instanceof LockUnavailableError) {
          stats.unavailable += 1;
          stats.unavailableMs.push(performance.now() - t0);
        } else if (e instanceof LockBusyError) stats.busy += 1;
        else stats.errors += 1;
      }
    }
    return stats;
  };

  const hold = (c: HoldCommand) =>
    locks.runExclusive(
      c.key,
      async (lock) => {
        const token = lock.fencingToken;
        // A limited holder's fenced store is its permit's (tokens increase per key and permit).
        const store = c.limit === undefined ? c.key : `${c.key}:${lock.permit}`;
        const accepted = await fencedWrite(store, token);
        process.send!({ holding: true, token, accepted, permit: lock.permit });
        // Work in small steps; a step that took far longer than planned means we were frozen.
        let last = performance.now();
        for (let i = 0; i < 500; i += 1) {
          await sleep(20);
          const now = performance.now();
          if (now - last > c.ttl) break;
          last = now;
        }
        const abortedOnResume = lock.signal.aborted;
        const lateWriteAccepted = await fencedWrite(store, token);
        return { abortedOnResume, lateWriteAccepted, token };
      },
      { ttl: c.ttl, limit: c.limit },
    );

  process.on('message', (c: Command) => {
    if (c.op === 'exit') {
      void app.close().then(async () => {
        await resource.quit();
        process.exit(0);
      });
      return;
    }
    if (c.op === 'health') {
      // How many instances this worker's own lock clients reach (PING through the backend).
      void backend.health().then(
        (health) => process.send!({ result: health }),
        (e: unknown) => process.send!({ error: String(e) }),
      );
      return;
    }
    const job = c.op === 'run' ? run(c) : hold(c);
    job.then(
      (result) => process.send!({ result }),
      (e: unknown) => process.send!({ error: String(e) }),
    );
  });
  process.send!('ready');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
