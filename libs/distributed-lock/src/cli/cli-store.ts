import { createRequire } from 'node:module';
import type { LockBackend } from '../backend/lock-backend.interface';
import type * as EtcdEntry from '../etcd';
import type * as PostgresEntry from '../postgres';
import { redisBackend } from '../redis/redis-backend.factory';
import type { CliStore } from './cli-args';

/** The subpath entries of optional peers, loaded only for their store. */
const load = createRequire(__filename);

/** Settings of the store the CLI connects to. @internal */
export interface CliStoreSettings {
  readonly store: CliStore;
  readonly keyPrefix: string;
  readonly timeout: number;
  readonly schema?: string;
  readonly table?: string;
}

/**
 * The backend for the CLI's store, with short timeouts so an unreachable store fails in seconds.
 * PostgreSQL and etcd are loaded only when used (optional peers). The CLI never creates a table.
 * @internal
 */
export function cliBackend(settings: CliStoreSettings): LockBackend {
  const { store, keyPrefix, timeout } = settings;
  const commandTimeout = Math.max(100, Math.floor(timeout / 3));
  switch (store.kind) {
    case 'redis': {
      return redisBackend({
        connections: store.urls.map((url) => ({
          ...redisOptionsOf(url),
          connectTimeout: commandTimeout,
          retryStrategy: () => null,
        })),
        keyPrefix,
        commandTimeout,
        logger: false,
      });
    }
    case 'postgres': {
      const { postgresBackend } = load('../postgres') as typeof PostgresEntry;
      return postgresBackend({
        connectionString: store.url,
        createTable: false,
        timeout: commandTimeout,
        poolSize: 2,
        ...(settings.schema === undefined ? {} : { schema: settings.schema }),
        ...(settings.table === undefined ? {} : { table: settings.table }),
      });
    }
    case 'etcd': {
      const { etcdBackend } = load('../etcd') as typeof EtcdEntry;
      return etcdBackend({ hosts: store.hosts, keyPrefix, commandTimeout });
    }
  }
}

/** ioredis options of a `redis://` / `rediss://` URL (ioredis parses the URL itself otherwise). */
function redisOptionsOf(url: string): Record<string, unknown> {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : undefined;
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(db !== undefined && Number.isInteger(db) ? { db } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/** The passwords in the store's URLs, so no output line ever contains one. */
export function secretsOf(store: CliStore): string[] {
  const urls =
    store.kind === 'redis' ? store.urls : store.kind === 'postgres' ? [store.url] : store.hosts;
  const out: string[] = [];
  for (const url of urls) {
    try {
      const u = new URL(url);
      if (u.password) out.push(u.password, decodeURIComponent(u.password));
    } catch {
      // not a URL: nothing to hide
    }
  }
  return out;
}
