/**
 * A bare LockService in its own process, for races that only real parallelism produces (split votes).
 * On `{ op: 'race', keys, at, every, ttl }` it calls `tryAcquire(keys[i])` at epoch ms `at + i * every`
 * (every worker at the same instants, one key each) and answers `{ won, tokens, errors }`.
 * `{ op: 'exit' }` closes it.
 */
import 'reflect-metadata';
import { Test } from '@nestjs/testing';
import { DistributedLockModule, LockService, type Lock } from '@app/distributed-lock';
import { LockManager } from '@app/distributed-lock/lock-manager';

interface RaceCommand {
  op: 'race';
  /** `tryAcquire` (default), or the per-tick claim `@Exclusive` makes for cron handlers. */
  kind?: 'acquire' | 'claim';
  keys: string[];
  at: number;
  every: number;
  ttl: number;
}

async function main(): Promise<void> {
  const app = await Test.createTestingModule({
    imports: [
      DistributedLockModule.forRoot({
        connections: process.env.REDIS_URLS!.split(','),
        logger: false,
      }),
    ],
  }).compile();
  await app.init();
  const locks = app.get(LockService);
  const manager = app.get(LockManager);

  const race = async (c: RaceCommand) => {
    const won: string[] = [];
    const tokens: number[] = [];
    const errors: string[] = [];
    for (const [i, key] of c.keys.entries()) {
      const at = c.at + i * c.every;
      // Sleep most of the way, then spin the last ms so every process fires within ~1 ms.
      const coarse = at - Date.now() - 5;
      if (coarse > 0) await new Promise((r) => setTimeout(r, coarse));
      while (Date.now() < at) {
        /* spin */
      }
      try {
        if (c.kind === 'claim') {
          if (await manager.claim(key, c.ttl)) won.push(key);
          continue;
        }
        const lock: Lock | null = await locks.tryAcquire(key, { ttl: c.ttl });
        if (lock) {
          won.push(key);
          tokens.push(lock.fencingToken);
        }
      } catch (e) {
        errors.push(`${key}: ${String(e)}`);
      }
    }
    return { won, tokens, errors };
  };

  process.on('message', (c: RaceCommand | { op: 'exit' }) => {
    if (c.op === 'exit') {
      void app.close().then(() => process.exit(0));
      return;
    }
    race(c).then(
      (result) => process.send!({ result }),
      (e: unknown) => process.send!({ error: String(e) }),
    );
  });
  process.send!('ready');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
