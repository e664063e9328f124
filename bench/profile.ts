/**
 * `npm run bench:profile`: drives one case at a fixed concurrency for a while against local
 * redis-server processes, so it can be profiled on its own (`node --cpu-prof`, see the script in
 * package.json). Not a benchmark: it prints ops/s only to show the run was busy.
 *
 * Env: PROFILE_CASE = service | otel | floor | floor-batched (default service; floor-batched corks each
 * socket until the next tick, as the library's write batching does), PROFILE_INSTANCES (1),
 * PROFILE_CONCURRENCY (64), PROFILE_SECONDS (10).
 */
import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { DistributedLockModule, LockService } from '../libs/distributed-lock/src';
import { RedisFleet } from '../test/support/redis-fleet';
import { batchPerTurn, majority } from './harness';

const CASE = process.env.PROFILE_CASE ?? 'service';
const INSTANCES = Number(process.env.PROFILE_INSTANCES ?? 1);
const CONCURRENCY = Number(process.env.PROFILE_CONCURRENCY ?? 64);
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 10);
const TTL = 10_000;
const CAD = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;
const SET_AND_COUNT = `if not redis.call("set", KEYS[1], ARGV[1], "NX", "PX", ARGV[2]) then return -1 end
return redis.call("incr", KEYS[2])`;

type FencedClient = Redis & {
  cad(key: string, token: string): Promise<number>;
  setAndCount(key: string, counter: string, token: string, ttl: number): Promise<number>;
};

async function main(): Promise<void> {
  const fleet = await RedisFleet.start(INSTANCES);
  const app = await Test.createTestingModule({
    imports: [
      DistributedLockModule.forRoot({
        connections: fleet.urls,
        logger: false,
        openTelemetry: CASE === 'otel',
      }),
    ],
  }).compile();
  await app.init();
  const locks = app.get(LockService);
  const clients = fleet.urls.map((u) => {
    const c = new Redis(u, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 500,
    }) as FencedClient;
    c.defineCommand('cad', { numberOfKeys: 1, lua: CAD });
    c.defineCommand('setAndCount', { numberOfKeys: 2, lua: SET_AND_COUNT });
    return c;
  });
  await Promise.all(clients.map((c) => c.connect()));
  const need = Math.floor(INSTANCES / 2) + 1;
  /** floor-batched: the floor with its writes batched by hand (bench/harness.ts batchPerTurn). */
  const noHold = () => undefined;
  const holds = clients.map((c) => (CASE === 'floor-batched' ? batchPerTurn(c) : noHold));
  const op =
    CASE === 'floor' || CASE === 'floor-batched'
      ? async (w: number, i: number) => {
          const key = `lock:profile:fenced:${w}:${i % 1000}`;
          const token = randomBytes(16).toString('hex');
          await majority(
            clients.map((c, k) => (holds[k](), c.setAndCount(key, `fence:${key}`, token, TTL))),
            need,
          );
          await majority(
            clients.map((c, k) => (holds[k](), c.cad(key, token))),
            need,
          );
        }
      : async (w: number, i: number) => {
          const lock = await locks.acquire(`profile:${w}:${i % 1000}`, { ttl: TTL });
          await lock.release();
        };
  // Warm-up (JIT, script cache), then the measured stretch.
  const warm = performance.now() + 1_000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      for (let i = 0; performance.now() < warm; i += 1) await op(w, i);
    }),
  );
  const serverCpu = async () => {
    let total = 0;
    for (const c of clients) {
      const info = await c.info('cpu');
      for (const m of info.matchAll(/used_cpu_(?:sys|user):([\d.]+)/g)) total += Number(m[1]);
    }
    return total * 1e6;
  };
  const redisBefore = await serverCpu();
  const cpuBefore = process.cpuUsage();
  let ops = 0;
  const end = performance.now() + SECONDS * 1_000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      for (let i = 0; performance.now() < end; i += 1) {
        await op(w, i);
        ops += 1;
      }
    }),
  );
  const s = (performance.now() - t0) / 1_000;
  const cpu = process.cpuUsage(cpuBefore);
  const redisUs = (await serverCpu()) - redisBefore;
  console.log(
    `${CASE}, ${INSTANCES} instance(s), c${CONCURRENCY}: ${Math.round(ops / s).toLocaleString('en-US')} ops/s, ` +
      `client CPU ${((cpu.user + cpu.system) / ops).toFixed(1)} µs/op (user ${(cpu.user / ops).toFixed(1)}, ` +
      `system ${(cpu.system / ops).toFixed(1)}), redis-server CPU ${(redisUs / ops).toFixed(1)} µs/op (all instances)`,
  );
  await app.close();
  await Promise.all(clients.map((c) => c.quit()));
  await fleet.stop();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
