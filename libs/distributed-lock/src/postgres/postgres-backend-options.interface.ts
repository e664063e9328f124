import type { Pool } from 'pg';

/**
 * Options of `postgresBackend()`. Give exactly one of `connectionString` / `pool`. All times are in
 * milliseconds.
 *
 * @example
 * ```ts
 * DistributedLockModule.forRoot({
 *   backend: postgresBackend({ connectionString: process.env.DATABASE_URL }),
 * });
 * ```
 */
export interface PostgresBackendOptions {
  /**
   * A `postgres://` URL: the backend creates a `pg.Pool` from it (fail-fast settings: connection and
   * query timeouts of `timeout` ms, a server-side `statement_timeout`), owns it and closes it on
   * shutdown. TLS and other connection settings go in the URL (`?sslmode=require`), or pass a `pool`.
   * @example 'postgresql://app:secret@db:5432/app'
   */
  connectionString?: string;
  /**
   * A `pg.Pool` you own: used for every lock statement, never closed by the backend. Each operation
   * waits at most `timeout` ms for a client of it and for its answer, whatever the pool's own
   * settings. Waiting acquisitions check out one more client of it for `LISTEN` while they wait.
   */
  pool?: Pool;
  /**
   * Schema of the lock table and its sequence. It must exist.
   * @default 'public'
   */
  schema?: string;
  /**
   * Name of the lock table (at most 53 bytes: the sequence is named `<table>_token_seq`).
   * @default 'distributed_locks'
   */
  table?: string;
  /**
   * Create the table and its sequence on first use (`CREATE ... IF NOT EXISTS`, safe when many
   * replicas start at once). With `false`, run the SQL of `postgresMigrationSql()` yourself first.
   * @default true
   */
  createTable?: boolean;
  /**
   * Announce releases with `NOTIFY` and let waiting acquisitions `LISTEN`, so a waiter retries as
   * soon as the holder lets go instead of at its next backoff step. Turn it off where `LISTEN` cannot
   * work (PgBouncer in transaction mode): waiting then polls with backoff only. While anyone waits,
   * `LISTEN` holds one client of a user `pool`: a pool with `max: 1` would have none left for the
   * locks, so there the default is `false`.
   * @default true (false for a user pool with `max: 1`)
   */
  notify?: boolean;
  /**
   * The `NOTIFY` channel (at most 63 bytes).
   * @default 'dlock:<schema>.<table>' (a hash of it when that is longer than 63 bytes)
   */
  channel?: string;
  /**
   * How long one operation may take in all, waiting for a pool client included, before it fails
   * with `LockUnavailableError` (fail closed).
   * @default 1000
   */
  timeout?: number;
  /**
   * Server-side `statement_timeout` of the connections of the pool created from `connectionString`
   * (sent as a startup parameter); `false` for poolers that reject startup parameters (PgBouncer
   * without `ignore_startup_parameters = statement_timeout`). Not allowed with `pool`.
   * @default the `timeout`
   */
  statementTimeout?: number | false;
  /**
   * Most connections of the pool created from `connectionString`. Not allowed with `pool`.
   * @default 10
   */
  poolSize?: number;
}
