import type { PgExecutor } from './postgres-executor';
import { monotonicNow } from '../utils/clock';

/** Pause between passes while orphans are pending (each pass is one statement for all of them). */
const PASS_EVERY_MS = 100;
/** An orphan is forgotten after this long whatever happened (its row expires by its TTL anyway). */
const FORGET_AFTER_MS = 10 * 60_000;

interface Orphan {
  readonly rows: string[];
  /** Server process the statement was sent to, when the driver knew it. */
  readonly pid: number | undefined;
  readonly since: number;
  /** A completed pass saw that process gone, so it will never grant anything any more. */
  gone: boolean;
}

/**
 * Frees what acquisitions we gave up on may have taken after all. A statement that timed out on a
 * paused or slow server still sits in that server's socket buffer, and it runs (and commits) when
 * the server resumes, granting a lock to an owner value nobody holds. The Redis backend undoes such
 * votes on the same connection, behind the request; a PostgreSQL connection that timed out is
 * destroyed instead, so the undo goes through other connections and must wait until the statement
 * cannot run any more: passes free every orphan's rows (owner-checked: the owner values are random
 * and ours) until a pass that started after its server process was seen gone from
 * `pg_stat_activity`. Without a known process (e.g. behind PgBouncer) that takes two passes.
 * @internal
 */
export class OrphanReaper {
  private readonly orphans = new Map<string, Orphan>();
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly executor: PgExecutor,
    /** $1 keys, $2 owners, $3 pids → `alive` (int[]): frees (and announces) the rows. */
    private readonly statement: string,
  ) {}

  /**
   * Frees `rows` where `owner` holds them, retrying until a pass succeeds after the statement that
   * took them can no longer run: `pid` is the server process it was sent to (`undefined`: unknown,
   * `null`: that statement has finished, e.g. a partial grant or a lock handed back unused).
   */
  add(owner: string, rows: string[], pid: number | null | undefined): void {
    if (this.closed) return;
    this.orphans.set(owner, {
      rows,
      pid: pid ?? undefined,
      since: monotonicNow(),
      gone: pid === null,
    });
    this.schedule(0);
  }

  /** Whether some pending orphan may hold one of `rows`. */
  covers(rows: string[]): boolean {
    for (const orphan of this.orphans.values()) {
      if (orphan.rows.some((row) => rows.includes(row))) return true;
    }
    return false;
  }

  /** Runs a pass now (after the one in flight, if any). Never rejects. */
  async reapNow(): Promise<void> {
    await this.pass;
    this.pass ??= this.runPass().finally(() => (this.pass = undefined));
    await this.pass;
  }

  /** Stops reaping (the rows left expire by their TTL). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.orphans.clear();
  }

  private schedule(delay: number): void {
    if (this.closed || this.timer || this.orphans.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reapNow().then(() => this.schedule(PASS_EVERY_MS));
    }, delay);
    this.timer.unref();
  }

  private async runPass(): Promise<void> {
    const now = monotonicNow();
    const batch = [...this.orphans].filter(([, o]) => {
      return now - o.since < FORGET_AFTER_MS;
    });
    // Those seen gone before this pass: its snapshot is later than their last commit.
    const settled = batch.filter(([, o]) => o.gone).map(([owner]) => owner);
    for (const [owner, o] of this.orphans)
      if (now - o.since >= FORGET_AFTER_MS) this.orphans.delete(owner);
    if (batch.length === 0) return;
    const pids = [...new Set(batch.flatMap(([, o]) => (o.pid === undefined ? [] : [o.pid])))];
    let alive: number[];
    try {
      const [row] = await this.executor.query<{ alive: number[] }>(this.statement, [
        [...new Set(batch.flatMap(([, o]) => o.rows))],
        batch.map(([owner]) => owner),
        pids,
      ]);
      alive = row.alive;
    } catch {
      return; // still unreachable: the next pass tries again
    }
    for (const owner of settled) this.orphans.delete(owner);
    for (const [, o] of batch) if (o.pid === undefined || !alive.includes(o.pid)) o.gone = true;
  }
}
