import type { LoggerService } from '@nestjs/common';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { createRequire } from 'node:module';
import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import { Messages } from '../distributed-lock.messages';
import type { ResolvedRedisOptions } from './resolve-redis-options';

/** A client the engine can run scripts on. @internal */
export type LockClient = Redis | Cluster;

/**
 * Settings that make a module-owned client fail fast instead of queueing commands while Redis is down
 * (ioredis' defaults hang a lock call for many seconds). User-supplied `RedisOptions` override them.
 * `commandTimeout` is not ioredis' per-command timeout here: that one counts time a command waits in
 * our own client, so a burst looked like an outage. The backend's stall watch uses it instead (an
 * instance that answers nothing for that long is down); ioredis keeps a 10× backstop.
 */
function failFastOptions(commandTimeout: number): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: Math.max(commandTimeout * 10, 5_000),
    connectTimeout: Math.max(1_000, commandTimeout * 2),
    autoResubscribe: false,
    // Keep reconnecting forever, but never faster than this: recovery must happen by itself.
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 10), 1_000),
  };
}

/**
 * ioredis' `Redis` class, loaded when the backend creates its own connections: `ioredis` is an
 * optional peer, so an app that locks only in PostgreSQL or etcd never loads it.
 * @throws DistributedLockConfigError when `ioredis` is not installed
 */
function loadRedis(): typeof Redis {
  try {
    return (createRequire(__filename)('ioredis') as { Redis: typeof Redis }).Redis;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw error;
    throw new DistributedLockConfigError('connections', Messages.ioredisMissing);
  }
}

/** True for an ioredis `Cluster` client. @internal */
export function isCluster(client: LockClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

/**
 * The Redis deployments locks are voted on: creates and owns `connections`, or borrows `clients`.
 * @internal
 */
export class RedisInstances {
  readonly clients: LockClient[];
  private readonly owned: boolean;
  private readonly down = new Set<number>();
  /** Removes our listeners: borrowed clients go back to their owner as they came. */
  private readonly unwatch: Array<() => void> = [];

  constructor(
    private readonly options: ResolvedRedisOptions,
    private readonly logger: LoggerService | null,
  ) {
    this.owned = options.connections !== undefined;
    if (this.owned) {
      const RedisClass = loadRedis();
      this.clients = options.connections!.map((entry) => {
        const base = failFastOptions(options.commandTimeout);
        return typeof entry === 'string'
          ? new RedisClass(entry, base)
          : new RedisClass({ ...base, ...entry });
      });
    } else {
      this.clients = [...options.clients!];
    }
    this.clients.forEach((client, i) => this.watch(client, i));
  }

  /** Connects owned clients, then checks the deployment: duplicates fail, odd counts are advised. */
  async connect(): Promise<void> {
    if (this.owned) {
      await Promise.all(
        this.clients.map(async (client, i) => {
          try {
            await client.connect();
          } catch (error) {
            this.down.add(i);
            const message = (error as Error).message;
            // ioredis says only "Connection is closed." when a TLS server drops a plaintext client.
            this.logger?.error(
              /Connection is closed/.test(message)
                ? Messages.closedBeforeAnswering(i)
                : Messages.unreachableAtBootstrap(i, message),
            );
          }
        }),
      );
    } else {
      this.clients.forEach((client, i) => {
        const o = (client as Redis).options as RedisOptions | undefined;
        if (!isCluster(client) && o && (o.enableOfflineQueue !== false || !o.commandTimeout)) {
          this.logger?.warn(Messages.userClientNotFailFast(i));
        }
      });
    }
    try {
      await this.checkDistinct();
    } catch (error) {
      // Bootstrap fails here; Nest will not run shutdown hooks for us, so close what we opened.
      await this.close();
      throw error;
    }
    if (this.clients.length % 2 === 0)
      this.logger?.warn(Messages.evenInstances(this.clients.length));
  }

  /** Closes the clients this module created; borrowed clients are left alone. */
  async close(): Promise<void> {
    for (const undo of this.unwatch.splice(0)) undo();
    if (!this.owned) return;
    await Promise.all(
      this.clients.map(async (client) => {
        // QUIT lets pending replies arrive, but never waits longer than commandTimeout for a
        // frozen instance; disconnect() then drops whatever is left.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          client.quit().catch(() => undefined),
          new Promise((resolve) => (timer = setTimeout(resolve, this.options.commandTimeout))),
        ]);
        clearTimeout(timer);
        client.disconnect();
      }),
    );
  }

  /**
   * Reads each instance's INFO once: two entries naming the same server fail bootstrap (a majority
   * of one server is no majority), and an instance that may evict keys is warned about.
   */
  private async checkDistinct(): Promise<void> {
    const infos = await Promise.all(
      this.clients.map(async (client) => {
        if (isCluster(client) || client.status !== 'ready') return '';
        try {
          return await client.info();
        } catch {
          return '';
        }
      }),
    );
    const seen = new Map<string, number>();
    for (const [i, info] of infos.entries()) {
      const policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
      if (policy !== undefined && policy !== 'noeviction') {
        this.logger?.warn(Messages.evictionPolicy(i, policy));
      }
      const id = /run_id:(\w+)/.exec(info)?.[1];
      if (id === undefined) continue;
      const first = seen.get(id);
      if (first !== undefined) {
        throw new DistributedLockConfigError(
          this.owned ? 'connections' : 'clients',
          Messages.duplicateInstance(first, i, id),
        );
      }
      seen.set(id, i);
    }
  }

  private watch(client: LockClient, i: number): void {
    // One line per outage, not one per reconnect attempt.
    const onError = (error: Error) => {
      if (this.down.has(i)) return;
      this.down.add(i);
      this.logger?.error(Messages.redisError(i, error.message));
    };
    const onReady = () => {
      if (this.down.delete(i)) this.logger?.log(Messages.redisRecovered(i));
    };
    client.on('error', onError);
    client.on('ready', onReady);
    this.unwatch.push(() => {
      client.off('error', onError);
      client.off('ready', onReady);
    });
  }
}
