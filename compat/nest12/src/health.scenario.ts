import type { AddressInfo } from 'node:net';
import { Controller, Get, Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { DistributedLockModule } from 'nestjs-distributed-lock';
import {
  DistributedLockHealthIndicator,
  DistributedLockHealthModule,
} from 'nestjs-distributed-lock/terminus';
import { check, env, sleep } from './support.js';

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly locks: DistributedLockHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.locks.isHealthy()]);
  }
}

@Module({})
class HealthScenarioModule {
  static register(connections: string[]): DynamicModule {
    return {
      module: HealthScenarioModule,
      imports: [
        DistributedLockModule.forRoot({ connections, logger: false }),
        TerminusModule.forRoot({ logger: false }),
        DistributedLockHealthModule,
      ],
      controllers: [HealthController],
    };
  }
}

interface HealthBody {
  status: string;
  details: { distributedLock?: { status: string; instances: number; up: number; quorum: number } };
}

/**
 * (d) nestjs-distributed-lock/terminus with @nestjs/terminus 12: GET /health answers 200 with
 * { instances: 3, up: 3, quorum: 2 }, 503 once 2 of the 3 redis-server processes are frozen
 * (SIGSTOP, pids in REDIS_PIDS), and 200 again after SIGCONT.
 */
export async function healthScenario(connections: string[]): Promise<string> {
  const pids = env('REDIS_PIDS').split(',').map(Number);
  check(pids.length === 3, `REDIS_PIDS has ${pids.length} pids, want 3`);
  const app = await NestFactory.create(HealthScenarioModule.register(connections), {
    logger: ['error', 'warn'],
  });
  const frozen: number[] = [];
  try {
    await app.listen(0, '127.0.0.1');
    const { port } = (app.getHttpServer() as { address(): AddressInfo }).address();
    const get = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      return { status: res.status, body: (await res.json()) as HealthBody };
    };
    const until = async (status: number, ms: number) => {
      const start = Date.now();
      for (;;) {
        const res = await get();
        if (res.status === status) return { ...res, ms: Date.now() - start };
        check(Date.now() - start < ms, `GET /health still answered ${res.status} after ${ms} ms`);
        await sleep(50);
      }
    };

    const healthy = await get();
    const lock = healthy.body.details.distributedLock;
    check(
      healthy.status === 200 && lock?.status === 'up' && lock.up === 3 && lock.quorum === 2,
      `healthy: ${healthy.status} ${JSON.stringify(healthy.body)}`,
    );
    for (const pid of pids.slice(1)) {
      process.kill(pid, 'SIGSTOP');
      frozen.push(pid);
    }
    const failing = await until(503, 3_000);
    const down = failing.body.details.distributedLock;
    check(
      down?.status === 'down' && down.up === 1,
      `2 of 3 frozen: ${JSON.stringify(failing.body)}`,
    );
    for (const pid of frozen.splice(0)) process.kill(pid, 'SIGCONT');
    const back = await until(200, 3_000);
    return `GET /health ${healthy.status} (up 3/3), 2 frozen → ${failing.status} after ${failing.ms} ms (up 1/3), resumed → ${back.status} after ${back.ms} ms`;
  } finally {
    for (const pid of frozen) process.kill(pid, 'SIGCONT');
    await app.close();
  }
}
