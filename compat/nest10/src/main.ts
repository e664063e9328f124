/** Nest 10 + @nestjs/schedule 4 + @nestjs/terminus 10 + ioredis 5.3 + @opentelemetry/api 1.4. */
import 'reflect-metadata';
import { check, env } from './shared/check';
import { cronSmoke } from './shared/cron-smoke';
import { healthSmoke } from './shared/health-smoke';
import { lockSmoke } from './shared/lock-smoke';
import { otelSmoke } from './shared/otel-smoke';

async function main(): Promise<void> {
  const connections = env('REDIS_URLS').split(',');
  const run = `nest10:${process.pid}`;
  check(connections.length === 3, `REDIS_URLS has ${connections.length} URLs, want 3`);
  console.log(await lockSmoke({ connections }, run));
  console.log(await cronSmoke({ connections, keyPrefix: `${run}:` }));
  console.log(
    await healthSmoke(
      { connections },
      { connections: ['redis://127.0.0.1:1'], commandTimeout: 500 },
    ),
  );
  console.log(await otelSmoke({ connections }, run));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
