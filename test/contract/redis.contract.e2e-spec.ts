import { Test } from '@nestjs/testing';
import type { Redis } from 'ioredis';
import { DistributedLockModule } from '@app/distributed-lock';
import { closeAll, inspectors } from '../support/lock-app';
import { RedisFleet } from '../support/redis-fleet';
import { describeLockContract, limitsContract } from './lock-contract';

/**
 * The Redis (Redlock) backend against the lock contract, on three real redis-server processes.
 * "Unavailable" is a paused majority (SIGSTOP: sockets open, no answers), so every call must give up
 * after the command timeout rather than hang; another replica is a second Nest app on the same fleet.
 */
let fleet: RedisFleet;
let inspect: Redis[];

describeLockContract('redis', {
  async start() {
    fleet = await RedisFleet.start(3);
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
  makeUnavailable: () => {
    fleet.nodes[0].pause();
    fleet.nodes[1].pause();
  },
  restore: async () => {
    for (const node of fleet.nodes) node.resume();
    // Resolve once every instance answers again and the lock clients have read the answers queued
    // during the pause (an instance still counted as stalled fails its first command fast).
    await Promise.all(inspect.map((client) => client.ping()));
    await new Promise((resolve) => setTimeout(resolve, 50));
  },
});

/**
 * The concurrency limits on a single Redis instance too: there each permit is won by one script on
 * one instance, a different path through the permit vote than on three.
 */
let single: RedisFleet;
let inspectSingle: Redis[];

describeLockContract(
  'redis (1 instance)',
  {
    async start() {
      single = await RedisFleet.start(1);
      inspectSingle = inspectors(single.urls);
    },
    async stop() {
      await closeAll(inspectSingle);
      await single.stop();
    },
    compile: (metadata, options) =>
      Test.createTestingModule({
        ...metadata,
        imports: [
          DistributedLockModule.forRoot({
            connections: single.urls,
            logger: false,
            commandTimeout: 250,
            ...options,
          }),
          ...(metadata.imports ?? []),
        ],
      }).compile(),
    dropKey: async (key) => {
      await Promise.all(inspectSingle.map((client) => client.del(`lock:${key}`)));
    },
    makeUnavailable: () => single.nodes[0].pause(),
    restore: async () => {
      single.nodes[0].resume();
      await Promise.all(inspectSingle.map((client) => client.ping()));
      await new Promise((resolve) => setTimeout(resolve, 50));
    },
  },
  [limitsContract],
);
