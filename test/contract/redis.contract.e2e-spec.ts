import { Test } from '@nestjs/testing';
import type { Redis } from 'ioredis';
import { DistributedLockModule } from '@app/distributed-lock';
import { closeAll, inspectors } from '../support/lock-app';
import { RedisFleet } from '../support/redis-fleet';
import { describeLockContract } from './lock-contract';

/**
 * The Redis (Redlock) backend against the lock contract, on three real redis-server processes and on
 * one. "Unavailable" is a paused majority (SIGSTOP: sockets open, no answers), so every call must give
 * up after the command timeout rather than hang; another replica is a second Nest app on the same fleet.
 */
for (const size of [3, 1]) {
  let fleet: RedisFleet;
  let inspect: Redis[];

  describeLockContract(size === 3 ? 'redis' : `redis-${size}`, {
    async start() {
      fleet = await RedisFleet.start(size);
      inspect = inspectors(fleet.urls);
    },
    async stop() {
      await closeAll(inspect);
      await fleet.stop();
    },
    compile: (metadata, options) =>
      Test.createTestingModule({
        ...metadata,
        imports: [
          DistributedLockModule.forRoot({
            connections: fleet.urls,
            logger: false,
            commandTimeout: 250,
            ...options,
          }),
          ...(metadata.imports ?? []),
        ],
      }).compile(),
    dropKey: async (key) => {
      await Promise.all(inspect.map((client) => client.del(`lock:${key}`)));
    },
    fenceCounters: async (key) =>
      Promise.all(inspect.map(async (client) => Number(await client.get(`fence:lock:${key}`)))),
    makeUnavailable: () => {
      // A majority: two of three, or the only one.
      for (const node of fleet.nodes.slice(0, Math.floor(size / 2) + 1)) node.pause();
    },
    restore: async () => {
      for (const node of fleet.nodes) node.resume();
      // Resolve once every instance answers again and the lock clients have read the answers queued
      // during the pause (an instance still counted as stalled fails its first command fast).
      await Promise.all(inspect.map((client) => client.ping()));
      await new Promise((resolve) => setTimeout(resolve, 50));
    },
  });
}
