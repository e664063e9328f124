/**
 * The demo's view of `LockService.events`: what each replica's `LockEventsListener`
 * (src/audit/lock-events.listener.ts) counted in the audit Redis, printed as a table and compared
 * with what the jobs themselves recorded there (`AuditService.recordRun`, `bump`, `recordPayment`).
 */
import type { Redis } from 'ioredis';

/** The example app's `@Exclusive()` handlers, as `LockEvent.handler` names them. */
export const HANDLERS = {
  report: 'TasksService.report',
  cleanup: 'TasksService.cleanup',
  warmCache: 'TasksService.warmCache',
  pay: 'OrdersController.pay',
} as const;

/** Table columns: an outcome as `AuditService.recordLockEvent` stores it, and its header. */
const COLUMNS: ReadonlyArray<[outcome: string, header: string]> = [
  ['acquired', 'acquired'],
  ['busy', 'busy'],
  ['unavailable', 'unavail'],
  ['released', 'released'],
  ['lost', 'lost'],
  ['skipped:tick-claimed', 'tick-claimed'],
  ['skipped:busy', 'busy'],
  ['skipped:shutdown', 'shutdown'],
  ['skipped:unavailable', 'unavail'],
];

/** Column groups over the counts (after `replica` and `handler`): a title and how many columns. */
export const COLUMN_GROUPS: ReadonlyArray<[title: string, span: number]> = [
  ['acquisitions', 3],
  ['lock ended', 2],
  ['skipped runs, by reason', 4],
];

/** What one replica recorded, read back after the run. */
export interface ReplicaRecord {
  name: string;
  /** Epoch ms: the replica answered `ready`. */
  readyAt: number;
  /** Epoch ms: the demo sent SIGKILL or SIGTERM. */
  stoppedAt?: number;
  killed: boolean;
  /** `<handler>|<outcome>` → count, from `LockService.events`. */
  events: Map<string, number>;
  /** Job → runs recorded by the job itself (`report`, `warmups`, `cleanups`, `payments`). */
  runs: Map<string, number>;
  /** Seconds of the cron ticks this replica ran (`report`). */
  ranTicks: Set<number>;
  /** Second of a cron tick → why this replica's `report` did not run it (`skipped:tick-claimed`, ...). */
  skippedTicks: Map<number, string>;
}

/** Every audit key the app writes for `replica` (the demo deletes them before a run). */
export function replicaKeys(replica: string): string[] {
  return [
    `demo:runs:${replica}`,
    `demo:ran:report:${replica}`,
    `demo:lock-events:${replica}`,
    `demo:lock-ticks:${replica}`,
  ];
}

const toCounts = (hash: Record<string, string>) =>
  new Map(Object.entries(hash).map(([k, v]) => [k, Number(v)]));

/** Reads what `replica` recorded. */
export async function readReplica(
  redis: Redis,
  replica: Pick<ReplicaRecord, 'name' | 'readyAt' | 'stoppedAt' | 'killed'>,
): Promise<ReplicaRecord> {
  const [runs, ran, events, ticks] = await Promise.all([
    redis.hgetall(`demo:runs:${replica.name}`),
    redis.smembers(`demo:ran:report:${replica.name}`),
    redis.hgetall(`demo:lock-events:${replica.name}`),
    redis.hgetall(`demo:lock-ticks:${replica.name}`),
  ]);
  const skippedTicks = new Map<number, string>();
  for (const [field, outcome] of Object.entries(ticks)) {
    const [handler, tick] = field.split('|');
    if (handler === HANDLERS.report) skippedTicks.set(Number(tick), outcome);
  }
  return {
    ...replica,
    runs: toCounts(runs),
    ranTicks: new Set(ran.map(Number)),
    events: toCounts(events),
    skippedTicks,
  };
}

/**
 * How many `outcome` events `r` counted for `handler` (`undefined`: every handler); `lost` adds up
 * every reason.
 */
export function count(r: ReplicaRecord, handler: string | undefined, outcome: string): number {
  let n = 0;
  for (const [field, v] of r.events) {
    const [h, o] = field.split('|');
    if (handler !== undefined && h !== handler) continue;
    if (o === outcome || (outcome === 'lost' && o.startsWith('lost:'))) n += v;
  }
  return n;
}

/** Handlers that appear in any replica's events, the example app's in a fixed order first. */
function handlersSeen(replicas: ReplicaRecord[]): string[] {
  const seen = new Set(replicas.flatMap((r) => [...r.events.keys()].map((f) => f.split('|')[0])));
  const known: string[] = Object.values(HANDLERS);
  return [...known.filter((h) => seen.has(h)), ...[...seen].filter((h) => !known.includes(h))];
}

/** The per-replica table as rows of cells, header first (also used by the HTML timeline). */
export function eventRows(replicas: ReplicaRecord[]): string[][] {
  const rows = [['replica', 'handler', ...COLUMNS.map(([, header]) => header)]];
  for (const r of replicas) {
    for (const h of handlersSeen([r])) {
      rows.push([r.name, h, ...COLUMNS.map(([outcome]) => String(count(r, h, outcome)))]);
    }
  }
  return rows;
}

/** The table as text. */
export function formatEventTable(replicas: ReplicaRecord[]): string {
  const rows = eventRows(replicas);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row: string[]) =>
    row.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  let groups = ' '.repeat(widths[0] + widths[1] + 4);
  let column = 2;
  for (const [title, span] of COLUMN_GROUPS) {
    const width = widths.slice(column, column + span).reduce((n, w) => n + w + 2, 0);
    groups += title.padStart(Math.floor((width + title.length) / 2)).padEnd(width);
    column += span;
  }
  const lostReasons = [
    ...new Set(
      replicas.flatMap((r) =>
        [...r.events.keys()].filter((f) => f.includes('|lost:')).map((f) => f.split('|lost:')[1]),
      ),
    ),
  ];
  return [
    groups.trimEnd(),
    line(rows[0]),
    ...rows.slice(1).map(line),
    lostReasons.length > 0 ? `(lost, by reason: ${lostReasons.join(', ')})` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/** One verdict line: passed, and what exactly was compared. */
export type Check = [passed: boolean, line: string];

/**
 * Acquisitions of `handler` per replica against the runs its job recorded (`job`). They must be
 * equal, except one acquisition more on a replica (a) killed by SIGKILL (between the acquisition
 * and the job's write) or (b) that skipped this handler for `shutdown` (granted as shutdown began,
 * released unrun). Each such exception is named in the line.
 */
export function compareRuns(
  replicas: ReplicaRecord[],
  handler: string,
  job: string,
  what: string,
): Check {
  let passed = true;
  const parts = replicas.map((r) => {
    const acquired = count(r, handler, 'acquired');
    const ran = r.runs.get(job) ?? 0;
    if (acquired === ran) return `${r.name} ${acquired} = ${ran}`;
    if (acquired === ran + 1 && r.killed) {
      return `${r.name} ${acquired} = ${ran} + 1 cut short by SIGKILL`;
    }
    if (acquired === ran + 1 && count(r, handler, 'skipped:shutdown') > 0) {
      return `${r.name} ${acquired} = ${ran} + 1 granted as shutdown began, not run`;
    }
    passed = false;
    return `${r.name} ${acquired} != ${ran}`;
  });
  return [passed, `events vs audit, ${what}: acquisitions = runs recorded: ${parts.join('; ')}`];
}
