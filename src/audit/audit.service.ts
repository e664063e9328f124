import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';

/**
 * Where the example app's jobs write what they did (a stand-in for your database). It uses its own
 * Redis connection, separate from the lock module's.
 */
@Injectable()
export class AuditService implements OnApplicationShutdown {
  readonly replica = process.env.REPLICA ?? String(process.pid);
  private readonly redis = new Redis(
    process.env.AUDIT_REDIS_URL ??
      (process.env.REDIS_URLS ?? 'redis://127.0.0.1:6379').split(',')[0],
    {
      maxRetriesPerRequest: 1,
    },
  );

  /** Records that this replica ran `job` for the scheduled second `tick`. */
  async recordRun(job: string, tick: number): Promise<void> {
    await this.redis
      .multi()
      .hincrby(`demo:count:${job}`, String(tick), 1)
      .hset(`demo:who:${job}`, String(tick), this.replica)
      .exec();
  }

  /** Records an accepted payment for `orderId`. */
  async recordPayment(orderId: string): Promise<void> {
    await this.redis.hincrby('demo:payments', orderId, 1);
  }

  /** Increments a counter. */
  async bump(name: string): Promise<void> {
    await this.redis.incr(`demo:${name}`);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit();
  }
}
