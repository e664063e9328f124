import { Controller, Injectable, Param, Post } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import autocannon from 'autocannon';
import { DistributedLockModule, Exclusive, LockService } from '../libs/distributed-lock/src';
import type { BenchCase } from './harness';

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

async function server(controller: new () => object, urls: string[]) {
  const mod = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ connections: urls, logger: false })],
    controllers: [controller],
  }).compile();
  const app = mod.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  return { url: await app.getUrl(), close: () => app.close() };
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
  };
  const results: Record<'locked' | 'plain', RouteResult> = {
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
  const run = async (which: 'locked' | 'plain', duration: number) =>
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
    await run('locked', 1);
    for (let r = 0; r < rounds; r += 1) {
      for (const which of r % 2 === 0
        ? (['plain', 'locked'] as const)
        : (['locked', 'plain'] as const)) {
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
  }
  return [results.plain, results.locked];
}
