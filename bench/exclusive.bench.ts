import { Controller, Inject, Injectable, Param, Post } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Test } from '@nestjs/testing';
import autocannon from 'autocannon';
import { DistributedLockModule, Exclusive, LockService } from '../libs/distributed-lock/src';
import { majority, type BenchCase } from './harness';

@Injectable()
class DecoratedWork {
  @Exclusive({ key: (w: number, i: number) => `bench:dec:${w}:${i}` })
  // Decorated methods become async: declare them so.
  // eslint-disable-next-line @typescript-eslint/require-await
  async run(_w: number, _i: number): Promise<number> {
    return 1;
  }
}

@Controller('items')
class LockedController {
  @Post(':id')
  @Exclusive({ key: (id: string) => `bench:route:${id}` })
  touch(@Param('id') id: string) {
    return { id };
  }
}

@Controller('items')
class PlainController {
  @Post(':id')
  touch(@Param('id') id: string) {
    return { id };
  }
}

/** `@Exclusive` on a provider method versus `runExclusive` with the same key shape. */
export async function decoratorCases(urls: string[]) {
  const app = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ connections: urls, logger: false })],
    providers: [DecoratedWork],
  }).compile();
  await app.init();
  const locks = app.get(LockService);
  const work = app.get(DecoratedWork);
  const cases: BenchCase[] = [];
  for (const concurrency of [1, 64]) {
    const group = `@Exclusive vs runExclusive, ${urls.length} instances, concurrency ${concurrency}`;
    cases.push(
      {
        name: 'runExclusive',
        group,
        concurrency,
        op: (w, i) => locks.runExclusive(`bench:run:${w}:${i % 1000}`, () => 1),
      },
      { name: '@Exclusive() method', group, concurrency, op: (w, i) => work.run(w, i % 1000) },
    );
  }
  return { cases, close: () => app.close() };
}

interface RouteResult {
  name: string;
  requests: number;
  seconds: number;
  p99: number[];
  non2xx: number;
}

const CAD = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;
type CadClient = Redis & { cad(key: string, token: string): Promise<number> };
const FLOOR_CLIENTS = 'FLOOR_CLIENTS';

/** The floor route: the same two majority round trips by hand (SET NX PX, then compare-and-delete). */
@Controller('items')
class FloorController {
  constructor(@Inject(FLOOR_CLIENTS) private readonly clients: CadClient[]) {}

  @Post(':id')
  async touch(@Param('id') id: string) {
    const key = `lock:bench:floor:${id}`;
    const token = randomBytes(16).toString('hex');
    const need = Math.floor(this.clients.length / 2) + 1;
    await majority(
      this.clients.map((c) => c.set(key, token, 'PX', 10_000, 'NX')),
      need,
    );
    const body = { id };
    await majority(
      this.clients.map((c) => c.cad(key, token)),
      need,
    );
    return body;
  }
}

async function server(controller: new (...args: never[]) => object, urls: string[]) {
  const clients = urls.map((u) => {
    const c = new Redis(u, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
    });
    c.defineCommand('cad', { numberOfKeys: 1, lua: CAD });
    return c as CadClient;
  });
  await Promise.all(clients.map((c) => c.connect()));
  const mod = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ connections: urls, logger: false })],
    controllers: [controller],
    providers: [{ provide: FLOOR_CLIENTS, useValue: clients }],
  }).compile();
  const app = mod.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  return {
    url: await app.getUrl(),
    close: async () => {
      await app.close();
      await Promise.all(clients.map((c) => c.quit()));
    },
  };
}

/** autocannon on loopback: a route with per-request lock keys versus the same route undecorated. */
export async function routeBench(
  urls: string[],
  rounds: number,
  seconds: number,
): Promise<RouteResult[]> {
  const servers = {
    locked: await server(LockedController, urls),
    plain: await server(PlainController, urls),
    floor: await server(FloorController, urls),
  };
  type Which = keyof typeof servers;
  const results: Record<Which, RouteResult> = {
    floor: {
      name: 'same route doing the floor by hand (SET NX PX + compare-and-delete on a majority)',
      requests: 0,
      seconds: 0,
      p99: [],
      non2xx: 0,
    },
    locked: {
      name: '@Exclusive route (per-request key)',
      requests: 0,
      seconds: 0,
      p99: [],
      non2xx: 0,
    },
    plain: {
      name: 'same route without the decorator',
      requests: 0,
      seconds: 0,
      p99: [],
      non2xx: 0,
    },
  };
  let n = 0;
  const run = async (which: Which, duration: number) =>
    autocannon({
      url: servers[which].url,
      connections: 32,
      duration,
      requests: [
        {
          method: 'POST',
          setupRequest: (req) => ({ ...req, path: `/items/${(n += 1)}` }),
        },
      ],
    });
  try {
    await run('plain', 1);
    await run('floor', 1);
    await run('locked', 1);
    const orders: Which[][] = [
      ['plain', 'floor', 'locked'],
      ['locked', 'plain', 'floor'],
      ['floor', 'locked', 'plain'],
    ];
    for (let r = 0; r < rounds; r += 1) {
      for (const which of orders[r % orders.length]) {
        const out = await run(which, seconds);
        const res = results[which];
        res.requests += out.requests.total;
        res.seconds += out.duration;
        res.p99.push(out.latency.p99);
        res.non2xx += out.non2xx;
      }
    }
  } finally {
    await servers.locked.close();
    await servers.plain.close();
    await servers.floor.close();
  }
  return [results.plain, results.floor, results.locked];
}
