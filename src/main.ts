import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { startMetrics } from './telemetry';

async function bootstrap(): Promise<void> {
  // Before the application exists: the lock module records through the global MeterProvider.
  startMetrics();
  const app = await NestFactory.create(AppModule);
  app.enableShutdownHooks();
  await app.listen(Number(process.env.PORT ?? 3000));
  // When started by `npm run demo`, tell it this replica is up.
  process.send?.('ready');
}

void bootstrap();
