import { Client, Pool, type PoolClient, type QueryConfig, type QueryResultRow } from 'pg';
import { Messages } from '../distributed-lock.messages';
import type { ResolvedPostgresOptions } from './resolve-postgres-options';
import { monotonicNow } from '../utils/clock';

/** `application_name` of the connections the backend opens (a URL parameter overrides it). */
const APPLICATION_NAME = 'nestjs-distributed-lock';

/**
 * Why a statement failed: it ran out of its time budget (`timeout`), the server answered with an
 * error (`server`, with its SQLSTATE `code`), or the connection failed (`link`). `sent` tells whether
 * the statement may have reached the server (and so may still run, or have run, after we gave up).
 * @internal
 */
export class PgFailure extends Error {
  constructor(
    readonly kind: 'timeout' | 'server' | 'link',
    message: string,
    readonly sent: boolean,
    readonly code?: string,
    /** The server process the statement was sent to, when known. */
    readonly pid?: number,
  ) {
    super(message);
    this.name = 'PgFailure';
  }
}

/** A query answered by the server with an error (it has a SQLSTATE), as opposed to a broken link. */
function isServerError(error: unknown): error is Error & { code: string } {
  const e = error as { code?: unknown; severity?: unknown } | null;
  return (
    e !== null &&
    typeof e === 'object' &&
    typeof e.severity === 'string' &&
    typeof e.code === 'string' &&
    e.code.length === 5
  );
}

/** Keeps a driver error's message and code only (its other fields may quote the statement). */
function failure(error: unknown, sent: boolean, budget: number, pid?: number): PgFailure {
  if (error instanceof PgFailure) return error;
  if (isServerError(error)) return new PgFailure('server', error.message, sent, error.code, pid);
  const message = error instanceof Error ? error.message : String(error);
  if (message === 'Query read timeout') {
    return new PgFailure('timeout', Messages.pgNoAnswer(budget), sent, undefined, pid);
  }
  return new PgFailure('link', message, sent, undefined, pid);
}

/** Errors after which a connection must not be reused: broken links, admin shutdowns, timeouts. */
function breaksConnection(error: unknown): boolean {
  if (!isServerError(error)) return true;
  return error.code.startsWith('08') || error.code.startsWith('57P');
}

/**
 * Runs the backend's statements on its pool with one time budget per operation: waiting for a pool
 * client and the query itself share `timeout` ms, whoever owns the pool and however it is configured
 * (a user pool may wait forever for a client; ours fails fast on its own as well). A connection that
 * timed out or broke is destroyed, never handed back for reuse.
 * @internal
 */
export class PgExecutor {
  readonly pool: Pool;
  /** The pool was created here (from `connectionString`), so it is ours to close. */
  readonly owned: boolean;
  readonly timeout: number;
  private readonly connectionString: string | undefined;

  constructor(options: ResolvedPostgresOptions) {
    this.timeout = options.timeout;
    this.connectionString = options.connectionString;
    if (options.pool) {
      this.pool = options.pool;
      this.owned = false;
    } else {
      this.pool = new Pool({
        connectionString: options.connectionString,
        max: options.poolSize,
        connectionTimeoutMillis: options.timeout,
        statement_timeout: options.statementTimeout,
        idleTimeoutMillis: 10_000,
        allowExitOnIdle: true,
        keepAlive: true,
        application_name: APPLICATION_NAME,
      });
      // An idle connection dies with the server: the pool drops it and the next checkout reconnects.
      this.pool.on('error', () => undefined);
      this.owned = true;
    }
  }

  /**
   * Runs one statement within `budget` ms (default: the backend's `timeout`).
   * @throws PgFailure
   */
  async query<R extends QueryResultRow>(
    text: string,
    values: unknown[] = [],
    budget: number = this.timeout,
  ): Promise<R[]> {
    const deadline = monotonicNow() + budget;
    let client: PoolClient;
    try {
      client = await this.checkout(budget);
    } catch (error) {
      throw failure(error, false, budget);
    }
    const left = Math.max(1, Math.ceil(deadline - monotonicNow()));
    let broken: Error | undefined;
    // A checked-out client has no error listener of the pool's: a connection that dies under the
    // query emits 'error', which would otherwise crash the process.
    const onError = (error: Error) => (broken = error);
    client.on('error', onError);
    try {
      const config: QueryConfig & { query_timeout: number } = { text, values, query_timeout: left };
      const result = await client.query<R>(config);
      return result.rows;
    } catch (error) {
      if (breaksConnection(error)) broken = error as Error;
      const pid = (client as unknown as { processID?: number | null }).processID ?? undefined;
      throw failure(error, true, budget, pid);
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  /**
   * A client for `LISTEN`: a dedicated connection from `connectionString` (not one of the pool's),
   * or one checked out of the user's pool. Give it back with {@link PgExecutor.returnListener}.
   */
  async listener(): Promise<Client | PoolClient> {
    if (!this.owned) return this.checkout(this.timeout);
    const client = new Client({
      connectionString: this.connectionString,
      connectionTimeoutMillis: this.timeout,
      keepAlive: true,
      application_name: APPLICATION_NAME,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    return client;
  }

  /** Closes a dedicated listener, or hands a pool client back (destroyed when it broke). */
  async returnListener(client: Client | PoolClient, broken: boolean): Promise<void> {
    if (this.owned) {
      // end() waits for the server to say goodbye; a paused server never does (app.close() hung).
      // Give it `timeout`, then cut the socket.
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([
        client.end().then(
          () => true,
          () => true,
        ),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), this.timeout))),
      ]);
      clearTimeout(timer);
      if (!ended) {
        (
          client as unknown as { connection?: { stream?: { destroy(): void } } }
        ).connection?.stream?.destroy();
      }
      return;
    }
    const pooled = client as PoolClient;
    if (!broken) {
      // Leave nothing subscribed on a connection that goes back to the user's pool.
      const ok = await pooled
        .query({ text: 'UNLISTEN *', query_timeout: this.timeout } as QueryConfig)
        .then(
          () => true,
          () => false,
        );
      pooled.release(ok ? undefined : true);
    } else pooled.release(true);
  }

  /** Ends the pool if it is ours (never a user's). */
  async close(): Promise<void> {
    if (this.owned) await this.pool.end().catch(() => undefined);
  }

  /** A pool client within `ms`; a client that arrives later goes straight back to the pool. */
  private checkout(ms: number): Promise<PoolClient> {
    // An idle client and nobody queued: the pool hands it over at once, no timer needed.
    if (this.pool.idleCount > 0 && this.pool.waitingCount === 0) return this.pool.connect();
    return new Promise<PoolClient>((resolve, reject) => {
      let late = false;
      const timer = setTimeout(() => {
        late = true;
        reject(new PgFailure('timeout', Messages.pgNoAnswer(ms), false));
      }, ms);
      this.pool.connect().then(
        (client) => {
          if (late) {
            client.release();
            return;
          }
          clearTimeout(timer);
          resolve(client);
        },
        (error: unknown) => {
          if (late) return;
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }
}
