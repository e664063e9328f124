import { Pool } from 'pg';
import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import type { PostgresBackendOptions } from './postgres-backend-options.interface';
import { postgresMigrationSql } from './postgres-backend.factory';
import { lockStatements, quoteIdentifier, quoteLiteral } from './postgres.sql';
import { resolvePostgresOptions } from './resolve-postgres-options';

const url = 'postgresql://u@127.0.0.1:1/db';

function fieldOf(options: unknown): string | undefined {
  try {
    resolvePostgresOptions(options as PostgresBackendOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(DistributedLockConfigError);
    return (error as DistributedLockConfigError).field;
  }
  return undefined;
}

describe('resolvePostgresOptions', () => {
  const pool = new Pool({ connectionString: url });
  afterAll(() => pool.end());

  it('fills in the documented defaults', () => {
    expect(resolvePostgresOptions({ connectionString: url })).toEqual({
      connectionString: url,
      pool: undefined,
      schema: 'public',
      table: 'distributed_locks',
      createTable: true,
      channel: 'dlock:public.distributed_locks',
      timeout: 1000,
      statementTimeout: 1000,
      poolSize: 10,
    });
    expect(resolvePostgresOptions({ pool, notify: false }).channel).toBeUndefined();
  });

  it.each<[string, unknown]>([
    ['connectionString', {}],
    ['connectionString', { connectionString: '' }],
    ['pool', { connectionString: url, pool }],
    ['pool', { pool: {} }],
    ['schema', { connectionString: url, schema: '' }],
    ['table', { connectionString: url, table: 'a\0b' }],
    ['table', { connectionString: url, table: 'x'.repeat(54) }],
    ['channel', { connectionString: url, channel: 'é'.repeat(32) }],
    ['createTable', { connectionString: url, createTable: 'yes' }],
    ['notify', { connectionString: url, notify: 1 }],
    ['timeout', { connectionString: url, timeout: 0 }],
    ['timeout', { connectionString: url, timeout: 1.5 }],
    ['statementTimeout', { pool, statementTimeout: 100 }],
    ['poolSize', { pool, poolSize: 2 }],
    ['poolSize', { connectionString: url, poolSize: 0 }],
    ['keyPrefix', { connectionString: url, keyPrefix: 'x' }],
  ])('names %s when it is invalid (%j)', (field, options) => {
    expect(fieldOf(options)).toBe(field);
  });

  it('accepts the longest names PostgreSQL keeps and derives a short channel from them', () => {
    const table = 't'.repeat(53);
    const schema = 's'.repeat(63);
    const resolved = resolvePostgresOptions({ connectionString: url, schema, table });
    expect(Buffer.byteLength(resolved.channel!)).toBeLessThanOrEqual(63);
    expect(resolved.channel).toMatch(/^dlock:[0-9a-f]{40}$/);
    expect(resolvePostgresOptions({ connectionString: url, statementTimeout: false })).toEqual(
      expect.objectContaining({ statementTimeout: false }),
    );
  });
});

describe('PostgreSQL SQL text', () => {
  it('quotes identifiers and literals so that any name is safe', () => {
    expect(quoteIdentifier('a"b')).toBe('"a""b"');
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(quoteLiteral('a\\b')).toBe(" E'a\\\\b'");
  });

  it('exports the migration for a schema and table, quoted', () => {
    const sql = postgresMigrationSql({ schema: 'my app', table: 'locks"x' });
    expect(sql).toContain('CREATE SEQUENCE IF NOT EXISTS "my app"."locks""x_token_seq"');
    expect(sql).toContain('CREATE TABLE IF NOT EXISTS "my app"."locks""x" (');
    expect(postgresMigrationSql()).toContain('"public"."distributed_locks"');
    expect(() => postgresMigrationSql({ table: '' })).toThrow(DistributedLockConfigError);
  });

  it('announces releases only when a channel is given, on that channel', () => {
    const names = { schema: 'public', table: 'locks' };
    expect(lockStatements(names, "dlock:it's").release).toContain("pg_notify('dlock:it''s', key)");
    expect(lockStatements(names, undefined).release).not.toContain('pg_notify');
  });
});

describe('notify with a user pool', () => {
  const poolOf = (max: number) => new Pool({ max });

  it('defaults to polling for a pool of one client (LISTEN would take the only one)', () => {
    expect(resolvePostgresOptions({ pool: poolOf(1) }).channel).toBeUndefined();
    expect(resolvePostgresOptions({ pool: poolOf(2) }).channel).toBeDefined();
    expect(resolvePostgresOptions({ pool: poolOf(1), notify: true }).channel).toBeDefined();
  });
});
