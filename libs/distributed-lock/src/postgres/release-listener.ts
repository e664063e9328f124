import type { Client, Notification, PoolClient, QueryConfig } from 'pg';
import type { PgExecutor } from './postgres-executor';
import { quoteIdentifier } from './postgres.sql';
import { ReleaseWakeups } from '../backend/release-wakeups';
import { monotonicNow } from '../utils/clock';

/** The listening connection is given back this long after the last waiter left. */
const LINGER_MS = 5_000;
/** After a failed attempt to listen, waiters poll (their timeout) for this long before the next one. */
const RETRY_AFTER_MS = 1_000;

interface Listening {
  client: Client | PoolClient;
  onNotification: (message: Notification) => void;
  onLost: () => void;
}

/**
 * Wakes waiting acquisitions when a release of their key is announced with `NOTIFY`. One listening
 * connection per backend, opened on the first wait and given back `LINGER_MS` after the last waiter
 * left (and on close): a dedicated connection when the backend owns its pool, else one client of the
 * user's pool, held while there are waiters. An announcement can be missed (while the connection
 * is being opened, or after it broke): each waiter's timeout is the fallback, so waiting never
 * depends on it.
 * @internal
 */
export class ReleaseListener {
  private readonly wakeups = new ReleaseWakeups();
  private listening: Listening | undefined;
  private opening: Promise<void> | undefined;
  private failedAt = -Infinity;
  private linger: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly executor: PgExecutor,
    private readonly channel: string,
  ) {}

  /** Resolves when a release of one of `keys` is announced, or after `timeoutMs`; never rejects. */
  wait(keys: string[], timeoutMs: number): Promise<void> {
    if (this.closed || !(timeoutMs > 0)) return Promise.resolve();
    const slept = this.wakeups.sleep(keys, timeoutMs, () => {
      if (this.wakeups.size === 0) this.idle();
    });
    if (this.linger) clearTimeout(this.linger);
    this.linger = undefined;
    this.ensure();
    return slept;
  }

  /** Wakes every waiter and gives the connection back. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.linger) clearTimeout(this.linger);
    this.linger = undefined;
    this.wakeups.wakeAll();
    await this.opening;
    await this.drop(false);
  }

  private ensure(): void {
    if (this.listening || this.opening || this.closed) return;
    if (monotonicNow() - this.failedAt < RETRY_AFTER_MS) return;
    this.opening = this.open()
      .catch(() => {
        this.failedAt = monotonicNow();
      })
      .finally(() => {
        this.opening = undefined;
      });
  }

  private async open(): Promise<void> {
    const client = await this.executor.listener();
    const listening: Listening = {
      client,
      onNotification: (message) => {
        if (message.channel === this.channel && message.payload !== undefined) {
          this.wakeups.wake(message.payload);
        }
      },
      onLost: () => {
        if (this.listening === listening) {
          this.failedAt = monotonicNow();
          void this.drop(true);
        }
      },
    };
    client.on('notification', listening.onNotification);
    client.on('error', listening.onLost);
    client.on('end', listening.onLost);
    this.listening = listening;
    try {
      const listen: QueryConfig & { query_timeout: number } = {
        text: `LISTEN ${quoteIdentifier(this.channel)}`,
        query_timeout: this.executor.timeout,
      };
      await client.query(listen);
    } catch (error) {
      await this.drop(true);
      throw error;
    }
    // Closed, or every waiter left, while the connection was being opened.
    if (this.closed) await this.drop(false);
    else if (this.wakeups.size === 0) this.idle();
  }

  private idle(): void {
    if (this.closed || !this.listening || this.linger) return;
    this.linger = setTimeout(() => {
      this.linger = undefined;
      if (this.wakeups.size === 0) void this.drop(false);
    }, LINGER_MS);
    this.linger.unref();
  }

  private async drop(broken: boolean): Promise<void> {
    const listening = this.listening;
    if (!listening) return;
    this.listening = undefined;
    const { client } = listening;
    client.removeListener('notification', listening.onNotification);
    client.removeListener('end', listening.onLost);
    // A connection that errors while it is being given back must not crash the process.
    const swallow = () => undefined;
    client.on('error', swallow);
    client.removeListener('error', listening.onLost);
    try {
      await this.executor.returnListener(client, broken);
    } finally {
      client.removeListener('error', swallow);
    }
  }
}
