import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  createNoopMeter,
  metrics,
  type Histogram,
  type Meter,
  type MeterProvider,
} from '@opentelemetry/api';
import {
  DistributedLockModule,
  LockService,
  type DistributedLockModuleOptions,
} from 'nestjs-distributed-lock';
import { check } from './check';

/** A meter that records the name of every histogram value (no SDK: only @opentelemetry/api). */
class RecordingMeterProvider implements MeterProvider {
  readonly recorded: string[] = [];

  getMeter(): Meter {
    const noop = createNoopMeter();
    const recorded = this.recorded;
    const meter: Meter = Object.create(noop) as Meter;
    meter.createHistogram = (name: string): Histogram => ({
      record: () => {
        recorded.push(name);
      },
    });
    return meter;
  }
}

@Module({})
class OtelSmokeModule {
  static register(options: DistributedLockModuleOptions): DynamicModule {
    return {
      module: OtelSmokeModule,
      imports: [DistributedLockModule.forRoot({ ...options, logger: false })],
    };
  }
}

/** With this @opentelemetry/api (and no SDK) the library records lock.acquire.duration on the global meter. */
export async function otelSmoke(
  options: DistributedLockModuleOptions,
  run: string,
): Promise<string> {
  const provider = new RecordingMeterProvider();
  check(metrics.setGlobalMeterProvider(provider), 'setGlobalMeterProvider() refused the provider');
  const app = await NestFactory.createApplicationContext(OtelSmokeModule.register(options), {
    logger: false,
  });
  try {
    await app.get(LockService).runExclusive(`${run}:otel`, () => undefined);
    check(
      provider.recorded.includes('lock.acquire.duration'),
      `no lock.acquire.duration recorded (recorded: ${provider.recorded.join(', ') || 'nothing'})`,
    );
    return 'OpenTelemetry: lock.acquire.duration recorded through the global meter';
  } finally {
    await app.close();
    metrics.disable();
  }
}
