import type { AddressInfo } from 'node:net';
import { Controller, Module, Param, Post, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DistributedLockModule, Exclusive } from 'nestjs-distributed-lock';
import { check, sleep } from './support.js';

const CONCURRENT = 10;

@Controller('orders')
class OrdersController {
  @Post(':id/pay')
  @Exclusive({ key: (id: string) => `order:${id}` })
  async pay(@Param('id') id: string): Promise<{ id: string; paid: true }> {
    await sleep(300);
    return { id, paid: true };
  }
}

@Module({})
class HttpScenarioModule {
  static register(connections: string[], keyPrefix: string): DynamicModule {
    return {
      module: HttpScenarioModule,
      imports: [DistributedLockModule.forRoot({ connections, keyPrefix, logger: false })],
      controllers: [OrdersController],
    };
  }
}

/** (c) A POST route locked per order, ~300 ms of work: 10 concurrent requests give 1×2xx, 9×409. */
export async function httpScenario(connections: string[], run: string): Promise<string> {
  const app = await NestFactory.create(HttpScenarioModule.register(connections, `${run}:lock:`), {
    logger: ['error', 'warn'],
  });
  try {
    await app.listen(0, '127.0.0.1');
    const { port } = (app.getHttpServer() as { address(): AddressInfo }).address();
    const pay = async (id: string) =>
      (await fetch(`http://127.0.0.1:${port}/orders/${id}/pay`, { method: 'POST' })).status;

    const statuses = await Promise.all(Array.from({ length: CONCURRENT }, () => pay('42')));
    const ok = statuses.filter((s) => s >= 200 && s < 300).length;
    const conflict = statuses.filter((s) => s === 409).length;
    check(
      ok === 1 && conflict === CONCURRENT - 1,
      `${CONCURRENT} concurrent requests answered [${statuses.join(', ')}] (want one 2xx, the rest 409)`,
    );
    const after = await pay('42');
    check(
      after >= 200 && after < 300,
      `after the first request finished the route answered ${after}`,
    );
    const winner = statuses.find((s) => s < 300);
    return `${CONCURRENT} concurrent POSTs: 1×${winner}, ${conflict}×409; the next one ${after}`;
  } finally {
    await app.close();
  }
}
