import type {
  BackendAcquireOptions,
  BackendContext,
  BackendHealth,
  BackendHeldKey,
  BackendHolder,
  BackendListQuery,
  BackendLock,
  LockBackend,
} from '../backend/lock-backend.interface';
import { Messages } from '../distributed-lock.messages';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockLostError } from '../errors/lock-lost.error';
import { LockUnavailableError, type LockVotes } from '../errors/lock-unavailable.error';
import { argumentError } from '../options/validators';
import { holderOf, newLockValue, sinceOf } from '../backend/lock-value';
import { extended, granted, keyField, leaseOf } from '../backend/validity';
import { PgExecutor, PgFailure } from './postgres-executor';
import { lockStatements, quoteIdentifier, type LockStatements } from './postgres.sql';
import { OrphanReaper } from './orphan-reaper';
import { ReleaseListener } from './release-listener';
import type { ResolvedPostgresOptions } from './resolve-postgres-options';
import { monotonicNow } from '../utils/clock';
import { limitOf, permitKeys } from '../backend/permits';

/** A lock as the PostgreSQL backend holds it. @internal */
interface PostgresLock extends BackendLock {
  /** The random owner value of its rows (never logged). */
  readonly owner: string;
  /** Its keys in lock order (UTF-8 byte order, as the table's "C" collation sorts them). */
  readonly rows: string[];
}

/** How often each backend deletes long-expired rows (± 20% jitter, so replicas spread out). */
const SWEEP_EVERY_MS = 60_000;

/** Longest key in UTF-8 bytes: a B-tree entry holds about a third of an 8 kB page. */
const MAX_KEY_BYTES = 2_000;

/** A lone UTF-16 surrogate: PostgreSQL would store U+FFFD, so two keys could become one row. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const FAILED: LockVotes = { total: 1, quorum: 1, granted: 0, held: 0, failed: 1 };

/**
 * Locks as leases in one PostgreSQL table (docs/POSTGRES.md): a row per held key with a random owner
 * value and an expiry computed by the database clock; fencing tokens from a sequence. Every
 * operation is one statement (one round trip, its own transaction), so it works through PgBouncer
 * in transaction mode and pins no connection while a lock is held. Validity is timed on the client
 * with the monotonic clock, as in the Redis backend.
 * @internal
 */
export class PostgresLockBackend implements LockBackend {
  readonly name = 'postgres';
  /** @see LockBackend.limits */
  readonly limits = true;
  /** This replica's identity, stored after the secret in every lock value (from `connect`). */
  private identity = '';
  private readonly executor: PgExecutor;
  private readonly sql: LockStatements;
  private readonly listener: ReleaseListener | undefined;
  private readonly reaper: OrphanReaper;
  private prepared = false;
  private preparing: Promise<void> | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: ResolvedPostgresOptions) {
    this.executor = new PgExecutor(options);
    this.sql = lockStatements(options, options.channel);
    this.reaper = new OrphanReaper(this.executor, this.sql.reap);
    this.listener =
      options.channel === undefined
        ? undefined
        : new ReleaseListener(this.executor, options.channel);
  }

  /** Prepares the table (when the database answers) and starts the sweep. Never throws. */
  async connect(context?: BackendContext): Promise<void> {
    this.identity = context?.identity ?? '';
    await this.ready().catch(() => undefined);
  }

  /** Stops the sweep, the listener and, if it is ours, the pool. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearTimeout(this.sweeper);
    this.sweeper = undefined;
    this.reaper.close();
    await this.listener?.close();
    await this.executor.close();
  }

  /** `SELECT 1` within the timeout. */
  async health(): Promise<BackendHealth> {
    const up = await this.executor.query('SELECT 1').then(
      () => 1,
      () => 0,
    );
    return { instances: 1, up, quorum: 1 };
  }

  /**
   * Takes every key for `ttl` ms, all or none, and issues a fencing token.
   * @throws LockBusyError when another owner holds one of them
   * @throws LockUnavailableError when the database did not answer in time, or too little validity was left
   * @throws InvalidLockArgumentError for keys PostgreSQL cannot store (before any I/O)
   */
  async acquire(
    keys: string[],
    ttl: number,
    options?: BackendAcquireOptions,
  ): Promise<BackendLock> {
    const limit = limitOf(options);
    if (limit > 1) return this.acquirePermit(keys, ttl, limit);
    const rows = this.rowsOf(keys);
    const since = options?.since;
    let owner = newLockValue(this.identity, since);
    let start = monotonicNow();
    let token = await this.take(keys, rows, owner, ttl);
    if (token === null && this.reaper.covers(rows)) {
      // Maybe held by an acquisition of ours that we gave up on during an outage: free it, retry.
      await this.reaper.reapNow();
      owner = newLockValue(this.identity, since);
      start = monotonicNow();
      token = await this.take(keys, rows, owner, ttl);
    }
    if (token === null) throw new LockBusyError(keys, Messages.busy(keys));
    const lock: PostgresLock = { ...leaseOf(start, ttl), fencingToken: Number(token), owner, rows };
    return granted(lock, keys, ttl, (l) => this.discard(l));
  }

  /**
   * Takes the first free of the `limit` permits of `keys[0]` (one statement; a row per permit,
   * `permitKey(key, i)`). A statement that found a free permit but lost it to a concurrent
   * acquisition is sent again, at most `limit` times (each loss means another permit was taken).
   * @throws LockBusyError when every permit is held
   */
  private async acquirePermit(keys: string[], ttl: number, limit: number): Promise<BackendLock> {
    const rows = this.rowsOf(permitKeys(keys[0], limit));
    let reaped = false;
    for (let attempt = 0; attempt <= limit; attempt += 1) {
      const owner = newLockValue(this.identity);
      const start = monotonicNow();
      let row: { tried: number | null; token: string | null } | undefined;
      try {
        if (!this.prepared) await this.ready();
        [row] = await this.executor.query<{ tried: number | null; token: string | null }>(
          this.sql.acquirePermit,
          [rows, owner, ttl],
        );
      } catch (error) {
        this.reapIfSent(error, owner, rows);
        throw this.unavailable(keys, error);
      }
      if (row?.tried === null || row === undefined) {
        if (reaped || !this.reaper.covers(rows)) break;
        // Maybe held by acquisitions of ours given up on during an outage: free them, retry.
        await this.reaper.reapNow();
        reaped = true;
        continue;
      }
      if (row.token === null) continue;
      const permit = row.tried;
      const lock: PostgresLock = {
        ...leaseOf(start, ttl),
        fencingToken: Number(row.token),
        owner,
        rows: [rows[permit]],
        permit,
      };
      return granted(lock, keys, ttl, (l) => this.discard(l));
    }
    throw new LockBusyError(keys, Messages.busy(keys));
  }

  /** One acquisition statement: the fencing token when every row was granted, else null. */
  private async take(
    keys: string[],
    rows: string[],
    owner: string,
    ttl: number,
  ): Promise<string | null> {
    try {
      if (!this.prepared) await this.ready();
      if (rows.length === 1) {
        const [row] = await this.executor.query<{ token: string }>(this.sql.acquireOne, [
          rows[0],
          owner,
          ttl,
        ]);
        return row?.token ?? null;
      }
      const [row] = await this.executor.query<{ granted: number; token: string | null }>(
        this.sql.acquireMany,
        [rows, owner, ttl],
      );
      if (row.granted === rows.length) return row.token;
      // A key was taken between the statement's check and its insert: undo the partial grant.
      if (row.granted > 0) this.undo(rows, owner);
      return null;
    } catch (error) {
      // A statement we gave up on may still run (a paused server runs it when it resumes): free
      // what it takes. A server error rolled it back, and a statement never sent took nothing.
      this.reapIfSent(error, owner, rows);
      throw this.unavailable(keys, error);
    }
  }

  /**
   * Takes `key` for `ttl` ms and never gives it back (a cron tick claim).
   * @returns false when another owner has it
   * @throws LockUnavailableError when the database did not answer in time
   */
  async claim(key: string, ttl: number): Promise<boolean> {
    const [row] = this.rowsOf([key]);
    const owner = newLockValue(this.identity);
    try {
      if (!this.prepared) await this.ready();
      const claimed = await this.executor.query(this.sql.claim, [row, owner, ttl]);
      return claimed.length === 1;
    } catch (error) {
      // As for acquisitions: a claim we gave up on may still commit; it would leave the tick
      // claimed by nobody who runs it, so it is given back.
      this.reapIfSent(error, owner, [row]);
      throw this.unavailable([key], error);
    }
  }

  /**
   * Sets the lock's expiry to `ttl` ms from now if every key is still ours and unexpired.
   * @throws LockLostError when it is not ours any more, or the extension came back too late
   * @throws LockUnavailableError when the database did not answer in time
   */
  async extend(held: BackendLock, keys: string[], ttl: number): Promise<BackendLock> {
    const lock = held as PostgresLock;
    const start = monotonicNow();
    if (start >= lock.deadline) {
      throw new LockLostError(keys, Messages.lost(keys, 'expired before it could be extended'));
    }
    let renewed: number;
    try {
      const [row] = await this.executor.query<{ extended: number }>(this.sql.extend, [
        lock.rows,
        lock.owner,
        ttl,
      ]);
      renewed = row.extended;
    } catch (error) {
      throw this.unavailable(keys, error);
    }
    if (renewed !== lock.rows.length) {
      // Rarely a key expired and was taken while the others were extended: hand back the rest.
      if (renewed > 0) this.discard(lock);
      throw new LockLostError(keys, Messages.lost(keys, 'no longer held by this owner'));
    }
    return extended({ ...lock, ...leaseOf(start, ttl) }, keys, ttl, (l) => this.discard(l));
  }

  /**
   * Frees the keys that still hold this lock (and announces it to waiters).
   * @throws LockLostError when some key was no longer held by this lock (expired or taken)
   * @throws LockUnavailableError when the database did not answer in time
   */
  async release(held: BackendLock, keys: string[]): Promise<void> {
    const lock = held as PostgresLock;
    let live: number;
    try {
      const [row] = await this.executor.query<{ live: number }>(this.sql.release, [
        lock.rows,
        lock.owner,
      ]);
      live = row.live;
    } catch (error) {
      throw this.unavailable(keys, error);
    }
    if (live !== lock.rows.length) {
      throw new LockLostError(keys, Messages.lost(keys, 'no longer held by this owner'));
    }
  }

  /** Frees the lock's keys where they still hold it, without waiting or reporting. */
  discard(held: BackendLock, _keys?: string[]): void {
    const lock = held as PostgresLock;
    this.undo(lock.rows, lock.owner);
  }

  /** Resolves when a release of one of `keys` is announced (NOTIFY), or after `timeoutMs`. */
  waitForRelease(keys: string[], timeoutMs: number): Promise<void> {
    if (this.listener) return this.listener.wait(keys, timeoutMs);
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, timeoutMs)));
  }

  /** True when an unexpired row holds `key`. @throws LockUnavailableError when the database did not answer */
  async isLocked(key: string): Promise<boolean> {
    const [row] = this.rowsOf([key]);
    try {
      if (!this.prepared) await this.ready();
      const [answer] = await this.executor.query<{ locked: boolean }>(this.sql.isLocked, [row]);
      return answer.locked;
    } catch (error) {
      throw this.unavailable([key], error);
    }
  }

  /**
   * The rows held now under `query.prefix`, in key order, at most `query.limit`.
   * @throws LockUnavailableError when the database did not answer in time
   */
  async list(query: BackendListQuery): Promise<BackendHeldKey[]> {
    try {
      if (!this.prepared) await this.ready();
      const rows = await this.executor.query<{
        key: string;
        owner: string;
        token: string;
        expires: number;
      }>(this.sql.list, [query.prefix, query.limit]);
      return rows.map((row) => ({
        key: row.key,
        identity: holderOf(row.owner),
        fencingToken: Number(row.token),
        expiresAt: Math.floor(Number(row.expires)),
      }));
    } catch (error) {
      throw this.unavailable([query.prefix], error);
    }
  }

  /**
   * Who holds `key` now (one primary-key read; the expiry is the database clock's).
   * @throws LockUnavailableError when the database did not answer in time
   */
  async inspect(key: string): Promise<BackendHolder | null> {
    const [row] = this.rowsOf([key]);
    try {
      if (!this.prepared) await this.ready();
      const [held] = await this.executor.query<{ owner: string; token: string; expires: number }>(
        this.sql.inspect,
        [row],
      );
      if (held === undefined) return null;
      return {
        identity: holderOf(held.owner),
        since: sinceOf(held.owner),
        fencingToken: Number(held.token),
        expiresAt: Math.floor(Number(held.expires)),
      };
    } catch (error) {
      throw this.unavailable([key], error);
    }
  }

  /**
   * Frees `key` whoever holds it, with a new token from the sequence in the same statement, and
   * announces it (NOTIFY).
   * @returns true when it was held
   * @throws LockUnavailableError when the database did not answer in time
   */
  async forceRelease(key: string): Promise<boolean> {
    const [row] = this.rowsOf([key]);
    try {
      if (!this.prepared) await this.ready();
      const [answer] = await this.executor.query<{ freed: number }>(this.sql.forceRelease, [row]);
      return answer.freed > 0;
    } catch (error) {
      throw this.unavailable([key], error);
    }
  }

  /**
   * The keys as rows, sorted in the table's order so that multi-key statements lock rows in one
   * order; checked before any I/O.
   * @throws InvalidLockArgumentError for a NUL character, a lone surrogate or an over-long key
   */
  private rowsOf(keys: string[]): string[] {
    keys.forEach((key, i) => {
      const field = keyField(keys, i);
      if (key.includes('\0')) throw argumentError(field, Messages.pgKey('a NUL character'));
      if (LONE_SURROGATE.test(key)) throw argumentError(field, Messages.pgKey('a lone surrogate'));
      if (Buffer.byteLength(key) > MAX_KEY_BYTES) {
        throw argumentError(field, Messages.pgKey(`more than ${MAX_KEY_BYTES} bytes of UTF-8`));
      }
    });
    if (keys.length === 1) return keys;
    return [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  }

  /** Creates the table on first use (if asked to) and starts the sweep, once it worked. */
  private ready(): Promise<void> {
    if (this.prepared) return Promise.resolve();
    this.preparing ??= this.prepare().finally(() => (this.preparing = undefined));
    return this.preparing;
  }

  private async prepare(): Promise<void> {
    if (this.options.createTable) {
      const { schema, table } = this.options;
      const qualified = `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
      const [row] = await this.executor.query<{ exists: boolean }>(this.sql.exists, [qualified]);
      if (!row.exists) await this.createTable();
    }
    this.prepared = true;
    this.scheduleSweep();
  }

  /** Runs the migration; a replica creating it at the same moment makes ours fail once: retried. */
  private async createTable(): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.executor.query(this.sql.migration);
        return;
      } catch (error) {
        const raced =
          error instanceof PgFailure &&
          ['23505', '42P07', '42710', '40P01'].includes(error.code ?? '');
        if (!raced || attempt >= 3) throw error;
      }
    }
  }

  private scheduleSweep(): void {
    if (this.closed || this.sweeper) return;
    const delay = SWEEP_EVERY_MS * (0.8 + Math.random() * 0.4);
    this.sweeper = setTimeout(() => {
      this.sweeper = undefined;
      void this.executor
        .query(this.sql.sweep)
        .catch(() => undefined)
        .finally(() => this.scheduleSweep());
    }, delay);
    this.sweeper.unref();
  }

  /**
   * After a statement that took `rows` for `owner` failed: if it was sent and not rolled back by a
   * server error (a timeout, a dropped link), it may still run when the server proceeds, so the
   * reaper frees whatever it takes. A statement never sent took nothing.
   */
  private reapIfSent(error: unknown, owner: string, rows: string[]): void {
    if (error instanceof PgFailure && error.sent && error.kind !== 'server') {
      this.reaper.add(owner, rows, error.pid);
    }
  }

  /** Owner-checked release of `rows`, in the background and retried until the database answers. */
  private undo(rows: string[], owner: string): void {
    this.reaper.add(owner, rows, null);
  }

  /** The error for a statement that failed or timed out: the lock was not decided (fail closed). */
  private unavailable(keys: string[], error: unknown): LockUnavailableError {
    if (error instanceof LockUnavailableError) return error;
    const failed =
      error instanceof PgFailure ? error : new PgFailure('link', String(error), false, undefined);
    let reason = failed.message;
    if (failed.code === '42P01' || failed.code === '3F000') {
      // The table (or schema) is gone or was never created: prepare again on the next call.
      this.prepared = false;
      reason = Messages.pgMissingTable(this.sql.table);
    }
    return new LockUnavailableError(keys, Messages.pgUnavailable(keys, reason), FAILED, failed);
  }
}
