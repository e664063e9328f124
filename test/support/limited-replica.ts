/**
 * A replica (child process) serving two concurrency-limited routes, `@Exclusive({ key, limit: 3 })`:
 * `POST /exports/throw/:id` answers 409 when all 3 permits are taken, `POST /exports/wait/:id` waits
 * for one. Each run counts itself on the resource Redis with the OCCUPY checker (`occ:<id>` inside
 * now, `occ-max:<id>` the most ever inside at once) and `HINCRBY runs <id> 1`.
 * Env: REDIS_URLS (lock instances), RESOURCE_URL. Answers `{ op: 'port' }` with its HTTP port.
 */
import 'reflect-metadata';
import { Controller, Module, Param, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { DistributedLockModule, Exclusive } from '@app/distributed-lock';
import { OCCUPY } from '../faults/checkers';

const resource = new Redis(process.env.RESOURCE_URL!, { maxRetriesPerRequest: 1 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WORK_MS = Number(process.env.WORK_MS ?? 150);

async function section(id: string): Promise<{ inside: number }> {
  const inside = Number(await resource.eval(OCCUPY, 2, `occ:${id}`, `occ-max:${id}`));
  try {
    await sleep(WORK_MS);
    await resource.hincrby('runs', id, 1);
  } finally {
    await resource.decr(`occ:${id}`);
  }
  return { inside };
}

@Controller('exports')
class ExportsController {
  @Post('throw/:id')
  @Exclusive({ key: (id: string) => `export:${id}`, limit: 3 })
  throwWhenBusy(@Param('id') id: string): Promise<{ inside: number }> {
    return section(id);
  }

  @Post('wait/:id')
  @Exclusive({ key: (id: string) => `export:${id}`, limit: 3, onBusy: 'wait', wait: 60_000 })
  waitWhenBusy(@Param('id') id: string): Promise<{ inside: number }> {
    return section(id);
  }
}

@Module({
  imports: [
    DistributedLockModule.forRoot({
      connections: process.env.REDIS_URLS!.split(','),
      logger: false,
      ttl: 2_000,
    }),
  ],
  controllers: [ExportsController],
})
class LimitedAppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.create(LimitedAppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const server = app.getHttpServer() as Server;
  const port = (server.address() as AddressInfo).port;
  process.on('message', (m: { op: string }) => {
    if (m.op === 'port') process.send!({ port });
  });
  process.on('SIGTERM', () => {
    void app.close().then(async () => {
      await resource.quit();
      process.exit(0);
    });
  });
  process.send!('ready');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
