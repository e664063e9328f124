/**
 * The example app (src/) as `npm run demo` runs each replica: its AppModule against 3 real
 * redis-server processes given in REDIS_URLS. GET /health (@nestjs/terminus with
 * DistributedLockHealthIndicator) answers 200 with the vote count while every instance answers, and
 * 503 once 2 of 3 are killed.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import type { App } from 'supertest/types';
import { AppModule } from '../src/app.module';
import { RedisFleet } from './support/redis-fleet';

const ENV = ['REDIS_URLS', 'LOCK_BACKEND', 'AUDIT_REDIS_URL'] as const;

describe('Example app: GET /health (AppModule on 3 Redis instances from REDIS_URLS)', () => {
  const savedEnv = ENV.map((name) => [name, process.env[name]] as const);
  let fleet: RedisFleet;
  let app: INestApplication<App>;

  /** Polls GET /health until it answers `status` (the probe of a killed instance fails at once). */
  /** Polls GET /health until it answers `status` (and, if given, `upCount` instances answer). */
  async function until(
    status: number,
    timeoutMs: number,
    upCount?: number,
  ): Promise<request.Response> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const res = await request(app.getHttpServer()).get('/health');
      const body = res.body as { details?: { distributedLock?: { up?: number } } };
      if (
        res.status === status &&
        (upCount === undefined || body.details?.distributedLock?.up === upCount)
      ) {
        return res;
      }
      if (performance.now() > deadline) {
        throw new Error(
          `GET /health still answers ${res.status} (${JSON.stringify(res.body)}) after ${timeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  beforeAll(async () => {
    fleet = await RedisFleet.start(3);
    // What the demo gives each replica; AppModule reads it when the application is created.
    process.env.REDIS_URLS = fleet.urls.join(',');
    delete process.env.LOCK_BACKEND;
    delete process.env.AUDIT_REDIS_URL; // the audit writes go to the first instance, never killed
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
  });

  afterAll(async () => {
    await app?.close();
    await fleet?.stop();
    for (const [name, value] of savedEnv) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('200 with { instances: 3, up: 3, quorum: 2 } while every instance answers', async () => {
    const res = await request(app.getHttpServer()).get('/health').expect(200);
    const details = { status: 'up', instances: 3, up: 3, quorum: 2 };
    expect(res.body).toEqual({
      status: 'ok',
      info: { distributedLock: details },
      error: {},
      details: { distributedLock: details },
    });
  });

  it('503 with up: 1 once 2 of the 3 instances are killed; 200 again once they are restarted', async () => {
    await fleet.nodes[1].kill();
    await fleet.nodes[2].kill();
    const res = await until(503, 4_000);
    const details = { status: 'down', instances: 3, up: 1, quorum: 2 };
    expect(res.body).toEqual({
      status: 'error',
      info: {},
      error: { distributedLock: details },
      details: { distributedLock: details },
    });
    // (Also lets the module close connected clients: closing ones of dead instances leaves timers.)
    await fleet.heal();
    // Restarted instances reconnect one by one: wait until all three answer again.
    const back = await until(200, 10_000, 3);
    expect(back.body).toMatchObject({ details: { distributedLock: { up: 3 } } });
  });
});
