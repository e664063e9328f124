import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import { checkBoolean, checkInteger, configError } from '../options/validators';
import type { PostgresBackendOptions } from './postgres-backend-options.interface';
import { MAX_IDENTIFIER_BYTES, SEQUENCE_SUFFIX } from './postgres.sql';

/** `postgresBackend()` options after validation, with defaults applied. @internal */
export interface ResolvedPostgresOptions {
  connectionString?: string;
  pool?: Pool;
  schema: string;
  table: string;
  createTable: boolean;
  /** `undefined` when `notify` is off. */
  channel?: string;
  timeout: number;
  statementTimeout: number | false;
  poolSize: number;
}

/** Documented defaults. @internal */
export const POSTGRES_DEFAULTS = {
  schema: 'public',
  table: 'distributed_locks',
  timeout: 1_000,
  poolSize: 10,
} as const;

const KNOWN = new Set<string>([
  'connectionString',
  'pool',
  'schema',
  'table',
  'createTable',
  'notify',
  'channel',
  'timeout',
  'statementTimeout',
  'poolSize',
]);

/** The table name leaves room for the sequence's suffix within PostgreSQL's identifier limit. */
const MAX_TABLE_BYTES = MAX_IDENTIFIER_BYTES - SEQUENCE_SUFFIX.length;

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * Validates a schema, table or channel name: 1 to `maxBytes` bytes, no NUL.
 * @internal
 */
export function checkName(
  field: 'schema' | 'table' | 'channel',
  value: unknown,
  fallback: string,
  maxBytes: number = field === 'table' ? MAX_TABLE_BYTES : MAX_IDENTIFIER_BYTES,
): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0) {
    throw configError(field, 'must be a non-empty string');
  }
  if (value.includes('\0')) throw configError(field, 'must not contain a NUL character');
  if (bytes(value) > maxBytes) {
    throw configError(field, `must be at most ${maxBytes} bytes long, got ${bytes(value)}`);
  }
  return value;
}

/** The default channel: `dlock:<schema>.<table>`, or a hash of it beyond 63 bytes. */
function defaultChannel(schema: string, table: string): string {
  const plain = `dlock:${schema}.${table}`;
  if (bytes(plain) <= MAX_IDENTIFIER_BYTES) return plain;
  return `dlock:${createHash('sha256').update(`${schema}.${table}`).digest('hex').slice(0, 40)}`;
}

/**
 * Validates `postgresBackend()` options; throws `DistributedLockConfigError` naming the first
 * invalid one. No I/O.
 * @internal
 */
export function resolvePostgresOptions(raw: PostgresBackendOptions): ResolvedPostgresOptions {
  if (raw === null || typeof raw !== 'object') {
    throw configError('options', 'postgresBackend() needs an options object');
  }
  for (const name of Object.keys(raw)) {
    if (!KNOWN.has(name)) {
      throw configError(
        name,
        `is not a postgresBackend() option; allowed: ${[...KNOWN].join(', ')}`,
      );
    }
  }
  const { connectionString, pool } = raw;
  if ((connectionString === undefined) === (pool === undefined)) {
    throw configError(
      connectionString === undefined ? 'connectionString' : 'pool',
      connectionString === undefined
        ? 'one of `connectionString` or `pool` is required'
        : '`connectionString` and `pool` are mutually exclusive; pass one',
    );
  }
  if (connectionString !== undefined) {
    if (typeof connectionString !== 'string' || connectionString.length === 0) {
      throw configError('connectionString', 'must be a non-empty postgres:// URL string');
    }
  } else {
    const p = pool as unknown as Record<string, unknown> | null;
    if (
      p === null ||
      typeof p !== 'object' ||
      typeof p.connect !== 'function' ||
      typeof p.query !== 'function'
    ) {
      throw configError('pool', 'must be a pg.Pool');
    }
    for (const owned of ['statementTimeout', 'poolSize'] as const) {
      if (raw[owned] !== undefined) {
        throw configError(
          owned,
          'applies only to the pool created from `connectionString`; configure your own pool instead',
        );
      }
    }
  }
  const schema = checkName('schema', raw.schema, POSTGRES_DEFAULTS.schema);
  const table = checkName('table', raw.table, POSTGRES_DEFAULTS.table);
  const createTable =
    raw.createTable === undefined ? true : checkBoolean('createTable', raw.createTable);
  // LISTEN holds one client of a user pool while anyone waits: with `max: 1` that is the only client
  // and every lock call would fail. Default to polling there (an explicit `notify: true` is honoured).
  const poolMax = (pool as { options?: { max?: number } } | undefined)?.options?.max;
  const notify =
    raw.notify === undefined
      ? !(poolMax !== undefined && poolMax < 2)
      : checkBoolean('notify', raw.notify);
  const channel = checkName('channel', raw.channel, defaultChannel(schema, table));
  const timeout =
    raw.timeout === undefined
      ? POSTGRES_DEFAULTS.timeout
      : checkInteger('timeout', raw.timeout, 10, 600_000);
  const statementTimeout =
    raw.statementTimeout === undefined
      ? timeout
      : raw.statementTimeout === false
        ? false
        : checkInteger('statementTimeout', raw.statementTimeout, 10, 600_000);
  const poolSize = raw.poolSize ?? POSTGRES_DEFAULTS.poolSize;
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 10_000) {
    throw configError('poolSize', `must be an integer from 1 to 10000, got ${String(poolSize)}`);
  }
  return {
    connectionString,
    pool,
    schema,
    table,
    createTable,
    channel: notify ? channel : undefined,
    timeout,
    statementTimeout,
    poolSize,
  };
}
