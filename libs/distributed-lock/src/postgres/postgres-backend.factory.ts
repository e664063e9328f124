import type { LockBackend } from '../backend/lock-backend.interface';
import type { PostgresBackendOptions } from './postgres-backend-options.interface';
import { PostgresLockBackend } from './postgres.backend';
import { migrationSql } from './postgres.sql';
import { checkName, POSTGRES_DEFAULTS, resolvePostgresOptions } from './resolve-postgres-options';

/**
 * A PostgreSQL lock backend for `DistributedLockModule.forRoot({ backend })`: locks are leases
 * (rows with an owner and an expiry set by the database clock), fencing tokens come from a sequence
 * and survive a server restart, waiting acquisitions wake on `NOTIFY`. Same `LockService` and
 * `@Exclusive()` behaviour and errors as on Redis. Needs the `pg` package (an optional peer).
 * Options are validated here: an invalid one throws `DistributedLockConfigError` naming it.
 *
 * @example
 * ```ts
 * import { postgresBackend } from 'nestjs-distributed-lock/postgres';
 *
 * DistributedLockModule.forRoot({
 *   backend: postgresBackend({ connectionString: process.env.DATABASE_URL }),
 * });
 * // or with a pg.Pool you own (never closed by the module):
 * DistributedLockModule.forRoot({ backend: postgresBackend({ pool }) });
 * ```
 */
export function postgresBackend(options: PostgresBackendOptions): LockBackend {
  return new PostgresLockBackend(resolvePostgresOptions(options));
}

/**
 * The SQL that creates the lock table and its fencing-token sequence (idempotent:
 * `CREATE ... IF NOT EXISTS`). Run it in your migrations when you pass `createTable: false`
 * (for example when the application's database role may not create tables).
 * @param options the same `schema` / `table` you give `postgresBackend()` (defaults: `public`,
 *   `distributed_locks`)
 *
 * @example
 * ```ts
 * await queryRunner.query(postgresMigrationSql({ schema: 'app' }));
 * ```
 */
export function postgresMigrationSql(
  options: Pick<PostgresBackendOptions, 'schema' | 'table'> = {},
): string {
  return migrationSql({
    schema: checkName('schema', options.schema, POSTGRES_DEFAULTS.schema),
    table: checkName('table', options.table, POSTGRES_DEFAULTS.table),
  });
}
