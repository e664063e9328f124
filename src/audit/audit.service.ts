import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { LockEvent } from '@app/distributed-lock';
import { Redis } from 'ioredis';

/** KEYS: highest term relayed, the log. ARGV: term, log entry. 1 when accepted, 0 for a stale term. */
const FENCED_RELAY = `
local hi = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) < hi then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1`;

/**
 * Where the example app's jobs write what they did (a stand-in for your database). It uses its own
 * Redis connection, separate from the lock module's. `npm run demo` reads these keys to check that
 * every tick ran once and to draw its timeline.
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
      .hincrby(`demo:runs:${this.replica}`, job, 1)
      .sadd(`demo:ran:${job}:${this.replica}`, tick)
      .exec();
  }

  /** Records an accepted payment for `orderId`, and when and where it was charged. */
  async recordPayment(orderId: string): Promise<void> {
    await this.redis
      .multi()
      .hincrby('demo:payments', orderId, 1)
      .hincrby(`demo:runs:${this.replica}`, 'payments', 1)
      .rpush('demo:log', this.logEntry('payment', orderId))
      .exec();
  }

  /** Increments a counter, and notes which replica did it and when. */
  async bump(name: string): Promise<void> {
    await this.redis
      .multi()
      .incr(`demo:${name}`)
      .hincrby(`demo:runs:${this.replica}`, name, 1)
      .rpush('demo:log', this.logEntry(name))
      .exec();
  }

  /**
   * Counts one lock event of this replica under `<name>|<outcome>`, where `name` is the
   * `@Exclusive()` handler (else the key up to its first `:`) and `outcome` the event type, with the
   * reason for `skipped` and `lost` (e.g. `skipped:tick-claimed`). A skipped cron run also notes
   * its tick (in seconds), so a timeline can show which replica stood aside for which tick.
   */
  async recordLockEvent(event: LockEvent): Promise<void> {
    const name = event.handler ?? event.keys[0].split(':')[0];
    const outcome =
      event.type === 'skipped' || event.type === 'lost'
        ? `${event.type}:${event.reason}`
        : event.type;
    const tx = this.redis
      .multi()
      .hincrby(`demo:lock-events:${this.replica}`, `${name}|${outcome}`, 1);
    if (event.type === 'skipped' && event.tick !== undefined) {
      tx.hset(
        `demo:lock-ticks:${this.replica}`,
        `${name}|${Math.round(event.tick / 1000)}`,
        outcome,
      );
    }
    await tx.exec();
  }

  /**
   * Relays one outbox batch as the leader of term `term`, fenced: the write is accepted only when
   * `term` is at least the highest term that relayed so far (`WHERE term >= $term` in SQL), so a
   * stale leader that resumed late can never relay after its successor. True when accepted.
   */
  async relayBatch(term: number): Promise<boolean> {
    const accepted = await this.redis.eval(
      FENCED_RELAY,
      2,
      'demo:outbox:term',
      'demo:log',
      term,
      this.logEntry('outbox-relay', `term ${term}`),
    );
    if (accepted === 1) await this.redis.hincrby(`demo:runs:${this.replica}`, 'outbox-relay', 1);
    return accepted === 1;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.redis.quit();
  }

  private logEntry(what: string, detail?: string): string {
    return JSON.stringify({ at: Date.now(), replica: this.replica, what, detail });
  }
}
