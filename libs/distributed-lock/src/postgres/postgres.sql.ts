/**
 * Every SQL statement of the PostgreSQL backend, built once per backend with its quoted names.
 *
 * A lock is a row `(key, owner, fencing_token, expires_at)`: a lease, not a session. The expiry is
 * computed by the database clock (`now() + ttl`), so no connection is pinned while a lock is held and
 * every operation is one statement in its own implicit transaction (PgBouncer transaction mode works).
 *
 * Fencing tokens come from one sequence per table, drawn *while the row is locked*: a takeover
 * (`ON CONFLICT DO UPDATE`) calls `nextval` after it has waited for the previous holder's commit, so
 * its token is above every token issued before it. A released row is kept (owner `NULL`) for
 * {@link RETAIN_RELEASED_MS} so that the next holder of a recently used key takes that path too; the
 * plain-insert path only serves keys unused for that long. `nextval` is WAL-logged and the acquire
 * statement forces `synchronous_commit = on` for its own transaction, so a token the client saw is
 * never issued again after a crash (a sequence may skip values on recovery, never go back).
 * @internal
 */

/** How long a released or expired lock row is kept before the sweep deletes it (see above). */
export const RETAIN_RELEASED_MS = 10 * 60_000;

/** Rows deleted per sweep statement, so a sweep never holds many row locks. */
export const SWEEP_BATCH = 5_000;

/** Longest identifier PostgreSQL keeps (NAMEDATALEN − 1 bytes). */
export const MAX_IDENTIFIER_BYTES = 63;

/** Suffixes of the names derived from the table's; the table name leaves room for the longest. */
export const SEQUENCE_SUFFIX = '_token_seq';

/** A PostgreSQL identifier in double quotes (embedded quotes doubled): safe for any name. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A PostgreSQL string literal, escaped like libpq's `PQescapeLiteral`. */
export function quoteLiteral(value: string): string {
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? ` E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

/** Where the locks live. */
export interface TableName {
  schema: string;
  table: string;
}

/**
 * The schema SQL: a sequence for fencing tokens and the lock table, both `IF NOT EXISTS`. The
 * table has no index besides its primary key, so updates of `owner` / `expires_at` stay HOT
 * (heap-only) and fillfactor 70 leaves them room on the page.
 */
export function migrationSql({ schema, table }: TableName): string {
  const s = quoteIdentifier(schema);
  return [
    `CREATE SEQUENCE IF NOT EXISTS ${s}.${quoteIdentifier(table + SEQUENCE_SUFFIX)} AS bigint NO CYCLE;`,
    `CREATE TABLE IF NOT EXISTS ${s}.${quoteIdentifier(table)} (`,
    '  key text COLLATE "C" PRIMARY KEY,',
    '  owner text,',
    '  fencing_token bigint NOT NULL,',
    '  expires_at timestamptz NOT NULL',
    ') WITH (fillfactor = 70);',
    '',
  ].join('\n');
}

/** The statements of one backend (one schema/table/channel). */
export interface LockStatements {
  /** The qualified table name as written in SQL, for messages. */
  readonly table: string;
  /** DDL, run when the table is missing and `createTable` is on. */
  readonly migration: string;
  /** $1 `schema.table` (unquoted, for to_regclass): whether the table exists. */
  readonly exists: string;
  /** $1 key, $2 owner, $3 ttl ms → `token` (text) when granted, no row when held. */
  readonly acquireOne: string;
  /** $1 keys (sorted), $2 owner, $3 ttl ms → `granted` (int), `token` (text). */
  readonly acquireMany: string;
  /**
   * $1 permit keys (in permit order), $2 owner, $3 ttl ms → `tried` (the 0-based permit that looked
   * free, null when none did) and `token` (text, null when another acquisition took it first).
   */
  readonly acquirePermit: string;
  /** $1 key, $2 owner, $3 ttl ms → no row when granted, one row when held (a tick claim). */
  readonly claim: string;
  /** $1 keys, $2 owner, $3 ttl ms → `extended` (int); all or none of the keys. */
  readonly extend: string;
  /** $1 keys, $2 owner → `live` (int): rows we still held unexpired; frees (and announces) them. */
  readonly release: string;
  /** $1 keys, $2 owners, $3 server pids → `alive` (int[]): frees rows of abandoned acquisitions. */
  readonly reap: string;
  /** $1 key → `locked` (bool). */
  readonly isLocked: string;
  /** Deletes claims that expired and locks expired or released long ago, one batch. */
  readonly sweep: string;
  /**
   * $1 prefix, $2 limit → `key`, `owner`, `token` (text), `expires` (epoch ms, float): the rows held
   * now, in key order (a range scan of the primary key).
   */
  readonly list: string;
  /**
   * $1 key → `freed` (int): frees the row whoever holds it and, in the same statement, gives it a new
   * token from the sequence (claims keep 0), so every later token is above the stale holder's.
   */
  readonly forceRelease: string;
  /** $1 key → `owner`, `token` (text), `expires` (epoch ms, float) of its holder now; no row when free. */
  readonly inspect: string;
}

/**
 * Builds the statements for `names`; `channel` (when given) is announced on release.
 * @internal
 */
export function lockStatements(names: TableName, channel: string | undefined): LockStatements {
  const t = `${quoteIdentifier(names.schema)}.${quoteIdentifier(names.table)}`;
  const seq = quoteLiteral(
    `${quoteIdentifier(names.schema)}.${quoteIdentifier(names.table + SEQUENCE_SUFFIX)}`,
  );
  const next = `nextval(${seq}::regclass)`;
  const expiry = `now() + $3 * interval '1 millisecond'`;
  // A grant or an extension must reach the WAL before the client relies on it (a lost extension
  // would end a lease the holder believes still runs): forced for this transaction only.
  const durable = `(SELECT set_config('synchronous_commit', 'on', true)) AS durable`;
  const free = 't.owner IS NULL OR t.expires_at <= now()';
  const take =
    `ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, fencing_token = ${next}, ` +
    `expires_at = excluded.expires_at WHERE ${free}`;
  const announce = channel === undefined ? '' : `, count(pg_notify(${quoteLiteral(channel)}, key))`;
  return {
    table: t,
    migration: migrationSql(names),
    exists: 'SELECT to_regclass($1) IS NOT NULL AS exists',
    acquireOne:
      `INSERT INTO ${t} AS t (key, owner, fencing_token, expires_at) ` +
      `SELECT $1, $2, ${next}, ${expiry} FROM ${durable} ${take} ` +
      'RETURNING t.fencing_token::text AS token',
    // The snapshot pre-check keeps a busy multi-key request from taking any row; a race that slips
    // past it (a key taken between the check and the insert) returns fewer rows, and the caller
    // undoes the partial grant. Rows are inserted in key order so two requests never deadlock.
    acquireMany:
      `WITH taken AS (SELECT 1 FROM ${t} t WHERE t.key = ANY($1::text[]) ` +
      'AND t.owner IS NOT NULL AND t.expires_at > now() LIMIT 1), ' +
      `granted AS (INSERT INTO ${t} AS t (key, owner, fencing_token, expires_at) ` +
      `SELECT k.key, $2, ${next}, ${expiry} FROM ${durable}, ` +
      'unnest($1::text[]) WITH ORDINALITY AS k(key, i) ' +
      `WHERE NOT EXISTS (SELECT 1 FROM taken) ORDER BY k.i ${take} ` +
      'RETURNING t.fencing_token) ' +
      'SELECT count(*)::int AS granted, max(fencing_token)::text AS token FROM granted',
    // The first permit free in the statement's snapshot, taken as acquireOne takes a key: a
    // concurrent acquisition that took it first leaves `token` null (the caller tries again).
    acquirePermit:
      `WITH free AS (SELECT k.key, k.i FROM unnest($1::text[]) WITH ORDINALITY AS k(key, i) ` +
      `LEFT JOIN ${t} AS o ON o.key = k.key ` +
      'WHERE o.key IS NULL OR o.owner IS NULL OR o.expires_at <= now() ORDER BY k.i LIMIT 1), ' +
      `granted AS (INSERT INTO ${t} AS t (key, owner, fencing_token, expires_at) ` +
      `SELECT free.key, $2, ${next}, ${expiry} FROM ${durable}, free ${take} ` +
      'RETURNING t.fencing_token) ' +
      'SELECT (SELECT i FROM free)::int - 1 AS tried, ' +
      '(SELECT fencing_token::text FROM granted) AS token',
    // Claims carry token 0 (they need none) and are swept as soon as they expire.
    claim:
      `INSERT INTO ${t} AS t (key, owner, fencing_token, expires_at) ` +
      `SELECT $1, $2, 0, ${expiry} FROM ${durable} ON CONFLICT (key) DO UPDATE SET ` +
      `owner = excluded.owner, fencing_token = 0, expires_at = excluded.expires_at ` +
      `WHERE ${free} RETURNING 1 AS claimed`,
    extend:
      `WITH mine AS (SELECT count(*) AS n FROM ${t} WHERE key = ANY($1::text[]) AND owner = $2 ` +
      `AND expires_at > now()), extended AS (UPDATE ${t} AS t SET expires_at = ${expiry} ` +
      `FROM mine, ${durable} WHERE mine.n = cardinality($1::text[]) AND t.key = ANY($1::text[]) ` +
      'AND t.owner = $2 AND t.expires_at > now() RETURNING 1) ' +
      'SELECT count(*)::int AS extended FROM extended',
    // The self-join reads each row as it was before this update: was the lease still running?
    release:
      `WITH freed AS (UPDATE ${t} AS t SET owner = NULL, expires_at = now() FROM ${t} AS o ` +
      'WHERE t.key = ANY($1::text[]) AND t.owner = $2 AND o.key = t.key ' +
      'RETURNING t.key, o.expires_at > now() AS live) ' +
      `SELECT count(*) FILTER (WHERE live)::int AS live${announce} FROM freed`,
    reap:
      `WITH freed AS (UPDATE ${t} AS t SET owner = NULL, expires_at = now() ` +
      'WHERE t.key = ANY($1::text[]) AND t.owner = ANY($2::text[]) RETURNING t.key) ' +
      'SELECT ARRAY(SELECT pid FROM pg_stat_activity WHERE pid = ANY($3::int[])) AS alive, ' +
      `count(*)::int AS freed${announce} FROM freed`,
    isLocked:
      `SELECT EXISTS (SELECT 1 FROM ${t} WHERE key = $1 AND owner IS NOT NULL ` +
      'AND expires_at > now()) AS locked',
    list:
      `SELECT key, owner, fencing_token::text AS token, ` +
      `(extract(epoch FROM expires_at) * 1000)::float8 AS expires FROM ${t} ` +
      'WHERE key >= $1 AND left(key, char_length($1)) = $1 AND owner IS NOT NULL ' +
      'AND expires_at > now() ORDER BY key LIMIT $2',
    inspect:
      `SELECT owner, fencing_token::text AS token, ` +
      `(extract(epoch FROM expires_at) * 1000)::float8 AS expires FROM ${t} ` +
      'WHERE key = $1 AND owner IS NOT NULL AND expires_at > now()',
    forceRelease:
      `WITH freed AS (UPDATE ${t} AS t SET owner = NULL, expires_at = now(), fencing_token = ` +
      `CASE WHEN t.fencing_token = 0 THEN 0 ELSE ${next} END ` +
      'WHERE t.key = $1 AND t.owner IS NOT NULL AND t.expires_at > now() RETURNING t.key) ' +
      `SELECT count(*)::int AS freed${announce} FROM freed`,
    sweep:
      `DELETE FROM ${t} WHERE key IN (SELECT key FROM ${t} WHERE (fencing_token = 0 ` +
      `AND expires_at < now()) OR expires_at < now() - interval '${RETAIN_RELEASED_MS} milliseconds' ` +
      `LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED)`,
  };
}
