/**
 * One replica in a child process for the leader-election tests and bench: a Nest application
 * context with the lock module and one `@Leader` worker. While it leads, the worker writes a record
 * every WRITE_EVERY_MS ms to the records Redis through a fenced write (FENCED_RECORD: accepted only
 * when its term is >= the highest term written so far; a stale term counts in `rejected`), checking
 * `leadership.signal` before each write as users are told to. With IGNORE_SIGNAL=1 it never checks
 * and never stops writing (the broken leader the checker must catch). Env: BACKEND (redis | postgres | etcd), REDIS_URLS,
 * PG_URL, ETCD_HOSTS, RECORDS_URL, NAME (the election), TTL, REPLICA (its identity), SHUTDOWN_MS.
 */
import 'reflect-metadata';
import { Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import {
  DistributedLockModule,
  Leader,
  type DistributedLockModuleOptions,
  type Leadership,
} from '@app/distributed-lock';
import { postgresBackend } from '@app/distributed-lock/postgres';
import { etcdBackend } from '@app/distributed-lock/etcd';

/**
 * KEYS: highest term, record list, rejected counter, rejected records. ARGV: term, record.
 * 1 accepted, 0 rejected.
 */
export const FENCED_RECORD = `
local hi = tonumber(redis.call('GET', KEYS[1]) or '0')
local t = tonumber(ARGV[1])
if t < hi then
  redis.call('INCR', KEYS[3])
  redis.call('RPUSH', KEYS[4], ARGV[2])
  return 0
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1`;

const records = new Redis(process.env.RECORDS_URL!, { maxRetriesPerRequest: 1 });
const replica = process.env.REPLICA ?? String(process.pid);
const name = process.env.NAME ?? 'replicas-leader';
const ttl = Number(process.env.TTL ?? 3_000);
const every = Number(process.env.WRITE_EVERY_MS ?? 20);
const ignoreSignal = process.env.IGNORE_SIGNAL === '1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

@Injectable()
class Worker {
  @Leader({ name, ttl })
  async work(leadership: Leadership): Promise<void> {
    for (;;) {
      if (!ignoreSignal && leadership.signal.aborted) return;
      const record = JSON.stringify({ who: replica, term: leadership.term, at: Date.now() });
      await records.eval(
        FENCED_RECORD,
        4,
        `${name}:hi`,
        `${name}:records`,
        `${name}:rejected`,
        `${name}:rejected-records`,
        leadership.term,
        record,
      );
      await sleep(every);
    }
  }
}

function lockOptions(): DistributedLockModuleOptions {
  const base = { identity: replica, logger: false as const, shutdownTimeout: 2_000 };
  switch (process.env.BACKEND ?? 'redis') {
    case 'postgres':
      return { ...base, backend: postgresBackend({ connectionString: process.env.PG_URL! }) };
    case 'etcd':
      return {
        ...base,
        backend: etcdBackend({ hosts: process.env.ETCD_HOSTS!.split(','), commandTimeout: 500 }),
      };
    default:
      return { ...base, connections: process.env.REDIS_URLS!.split(','), commandTimeout: 250 };
  }
}

@Module({ imports: [DistributedLockModule.forRoot(lockOptions())], providers: [Worker] })
class LeaderReplicaModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(LeaderReplicaModule, { logger: false });
  process.on('SIGTERM', () => {
    void app.close().then(async () => {
      await records.quit();
      process.exit(0);
    });
  });
  process.send!('ready');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
