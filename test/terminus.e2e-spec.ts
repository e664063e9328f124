/**
 * nestjs-distributed-lock/terminus with @nestjs/terminus 11: a @HealthCheck() route over 3 real
 * redis-server processes answers 200 while a majority answers, 503 once 2 of 3 are frozen (SIGSTOP)
 * or killed, and 200 again when they are back.
 */
import { Controller, Get, type INestApplication } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import type { App } from 'supertest/types';
import { DistributedLockModule } from '@app/distributed-lock';
import {
  DistributedLockHealthIndicator,
  DistributedLockHealthModule,
} from '@app/distributed-lock/terminus';
import { RedisFleet } from './support/redis-fleet';

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

  @Get('named')
  @HealthCheck()
  named() {
    return this.health.check([() => this.locks.isHealthy('locks')]);
  }
}

const up = (n: number) => ({ status: 'up', instances: 3, up: n, quorum: 2 });
const down = (n: number) => ({ status: 'down', instances: 3, up: n, quorum: 2 });

describe('DistributedLockHealthIndicator (Terminus 11, 3 Redis instances)', () => {
  let fleet: RedisFleet;
  let app: INestApplication<App>;

  /**
   * Polls GET /health until it answers `status` (and, if given, `upCount` instances answer);
   * resolves with the body and how long it took. Restarted instances reconnect one by one, so the
   * first 200 after a heal may still count 2 of 3: a caller that needs all 3 says so.
   */
  async function until(status: number, timeoutMs: number, upCount?: number) {
    const start = performance.now();
    for (;;) {
      const res = await request(app.getHttpServer()).get('/health');
      const body = res.body as { details?: { distributedLock?: { up?: number } } };
      if (
        res.status === status &&
        (upCount === undefined || body.details?.distributedLock?.up === upCount)
      ) {
        return { body: res.body as unknown, ms: performance.now() - start };
      }
      if (performance.now() - start > timeoutMs) {
        throw new Error(
          `GET /health still answers ${res.status} (${JSON.stringify(res.body)}) after ${timeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    fleet = await RedisFleet.start(3);
    const moduleRef = await Test.createTestingModule({
      imports: [
        DistributedLockModule.forRoot({ connections: fleet.urls, logger: false }),
        TerminusModule.forRoot({ logger: false }),
        DistributedLockHealthModule,
      ],
      controllers: [HealthController],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  });

  afterAll(async () => {
    await fleet?.heal();
    await app?.close();
    await fleet?.stop();
  });

  afterEach(async () => {
    await fleet.heal();
    await until(200, 10_000, 3);
  });

  it('200 with { instances, up, quorum } while every instance answers; the key is configurable', async () => {
    const res = await request(app.getHttpServer()).get('/health').expect(200);
    expect(res.body).toEqual({
      status: 'ok',
      info: { distributedLock: up(3) },
      error: {},
      details: { distributedLock: up(3) },
    });
    const named = await request(app.getHttpServer()).get('/health/named').expect(200);
    expect(named.body).toMatchObject({ info: { locks: up(3) } });
  });

  it('still 200 with 1 of 3 frozen (a majority answers)', async () => {
    fleet.nodes[2].pause();
    const res = await request(app.getHttpServer()).get('/health').expect(200);
    expect(res.body).toMatchObject({ status: 'ok', details: { distributedLock: up(2) } });
  });

  it('503 within 2 s once 2 of 3 are frozen (SIGSTOP), 200 again after SIGCONT', async () => {
    fleet.nodes[1].pause();
    fleet.nodes[2].pause();
    const failing = await until(503, 2_000);
    expect(failing.body).toEqual({
      status: 'error',
      info: {},
      error: { distributedLock: down(1) },
      details: { distributedLock: down(1) },
    });
    fleet.nodes[1].resume();
    fleet.nodes[2].resume();
    const back = await until(200, 5_000, 3);
    expect(back.body).toMatchObject({ details: { distributedLock: up(3) } });
  });

  it('503 at once when 2 of 3 are killed, 200 once they are restarted', async () => {
    await fleet.nodes[0].kill();
    await fleet.nodes[1].kill();
    const failing = await until(503, 3_000);
    expect(failing.body).toMatchObject({ status: 'error', error: { distributedLock: down(1) } });
    await fleet.heal();
    expect((await until(200, 5_000)).body).toMatchObject({ status: 'ok' });
    const back = await until(200, 10_000, 3);
    expect(back.body).toMatchObject({ details: { distributedLock: up(3) } });
  });
});
