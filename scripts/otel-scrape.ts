/**
 * Prints what a Prometheus scrape of the lock metrics looks like (the sample in the README): starts 3
 * redis-server processes, registers an OpenTelemetry MeterProvider with the Prometheus exporter as
 * the global provider, runs two replicas of a small app (LockService calls, an @Exclusive @Cron job),
 * then fetches /metrics once and prints the lock series.
 *
 *   npx ts-node --transpile-only -r tsconfig-paths/register scripts/otel-scrape.ts
 */
import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Cron, ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import { Test, type TestingModule } from '@nestjs/testing';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { DistributedLockModule, Exclusive, LockService } from '../libs/distributed-lock/src';
import { freePort, RedisFleet } from '../test/support/redis-fleet';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

@Injectable()
class ReportJob {
  @Cron('* * * * * *')
  @Exclusive()
  async nightlyReport(): Promise<void> {
    await sleep(30);
  }
}

async function replica(urls: string[]): Promise<TestingModule> {
  const app = await Test.createTestingModule({
    imports: [
      ScheduleModule.forRoot(),
      DistributedLockModule.forRoot({ connections: urls, logger: false }),
    ],
    providers: [ReportJob],
  }).compile();
  await app.init();
  return app;
}

async function main(): Promise<void> {
  const port = await freePort();
  const exporter = new PrometheusExporter({ port, host: '127.0.0.1' });
  const provider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(provider);

  const fleet = await RedisFleet.start(3);
  const replicas = [await replica(fleet.urls), await replica(fleet.urls)];
  try {
    const locks = replicas[0].get(LockService);
    for (let id = 1; id <= 20; id += 1) {
      await locks.runExclusive(`order:${id}`, () => sleep(2));
    }
    const held = await locks.acquire('order:42');
    await locks.tryAcquire('order:42'); // busy: null
    await locks.acquire('order:42', { wait: 200 }).catch(() => undefined); // busy after waiting
    const invoice = await locks.acquire('invoice:7'); // still held at the scrape
    const lease = await locks.acquire('session:9', { ttl: 300 });
    void lease.signal; // observed: its expiry is noticed, a 'lost' event
    await sleep(3_200); // a few cron ticks: one replica runs each, the other skips it
    await held.release();
    for (const r of replicas) {
      for (const job of r.get(SchedulerRegistry).getCronJobs().values()) void job.stop();
    }
    await fleet.nodes[1].kill();
    await fleet.nodes[2].kill();
    await locks.tryAcquire('order:43').catch(() => undefined); // unavailable: 1 of 3 answered
    const scrape = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    console.log(
      scrape
        .split('\n')
        .filter((line) => line.includes('lock_'))
        .join('\n'),
    );
    await invoice.release().catch(() => undefined);
  } finally {
    await fleet.heal();
    for (const r of replicas) await r.close();
    await fleet.stop();
    await provider.shutdown();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
