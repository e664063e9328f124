/** Nest 11 + @nestjs/schedule 5 + @nestjs/terminus 11 + ioredis 6, the app's own clients passed in. */
import 'reflect-metadata';
import { Redis } from 'ioredis';
import { check, env } from './shared/check';
import { cronSmoke } from './shared/cron-smoke';
import { healthSmoke } from './shared/health-smoke';
import { lockSmoke } from './shared/lock-smoke';

async function main(): Promise<void> {
  const urls = env('REDIS_URLS').split(',');
  const run = `nest11:${process.pid}`;
  // ioredis 6 clients the app created: the library uses them and leaves them open on shutdown.
  const clients = urls.map((url) => new Redis(url, { maxRetriesPerRequest: 1 }));
  try {
    console.log(await lockSmoke({ clients }, run));
    check(
      clients.every((c) => c.status === 'ready'),
      `the app's ioredis 6 clients after shutdown: ${clients.map((c) => c.status).join(', ')} (want ready)`,
    );
    console.log(await cronSmoke({ clients, keyPrefix: `${run}:` }));
    console.log(
      await healthSmoke(
        { connections: urls },
        { connections: ['redis://127.0.0.1:1'], commandTimeout: 500 },
      ),
    );
    console.log("ioredis 6: the app's own clients were used and left open on shutdown");
  } finally {
    await Promise.all(clients.map((c) => c.quit()));
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
