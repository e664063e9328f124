import { createRequire } from 'node:module';

/** The scheduled fire time an invocation belongs to, and the distance to the following one. */
export interface CronTick {
  /** Epoch ms of the scheduled fire time. */
  readonly at: number;
  /** Ms from this fire time to the next one. */
  readonly period: number;
}

/** The part of `@nestjs/schedule`'s cron metadata we read. */
export interface CronMetadata {
  cronTime?: unknown;
  timeZone?: string;
  utcOffset?: number;
}

interface CronTimeLike {
  getNextDateFrom(start: Date): { toMillis(): number };
}
type CronTimeCtor = new (
  source: string,
  timeZone?: string | null,
  utcOffset?: number | null,
) => CronTimeLike;

let cronTimeCtor: CronTimeCtor | null | undefined;

/** `CronTime` from the very `cron` package `@nestjs/schedule` schedules with, so ticks agree. */
function loadCronTime(): CronTimeCtor | null {
  if (cronTimeCtor === undefined) {
    try {
      const fromSchedule = createRequire(require.resolve('@nestjs/schedule'));
      cronTimeCtor = (fromSchedule('cron') as { CronTime: CronTimeCtor }).CronTime;
    } catch {
      cronTimeCtor = null;
    }
  }
  return cronTimeCtor;
}

const MAX_LOOKBACK_MS = 400 * 24 * 3_600_000;

/**
 * The scheduled fire time nearest to `now` (a replica whose clock runs ahead fires early, one whose
 * clock lags fires late: rounding to the nearest tick maps both to the same tick while the skew is
 * under half the period). `undefined` when the cron time is not an expression we can evaluate.
 * @internal
 */
export function cronTick(meta: CronMetadata, now: number): CronTick | undefined {
  if (typeof meta.cronTime !== 'string') return undefined;
  const CronTime = loadCronTime();
  if (!CronTime) return undefined;
  const time = new CronTime(meta.cronTime, meta.timeZone ?? null, meta.utcOffset ?? null);
  const next = (from: number) => time.getNextDateFrom(new Date(from)).toMillis();
  const after = next(now);
  // Find a fire time at or before `now`, looking back exponentially, then walk forward to the last one.
  let prev: number | undefined;
  for (let back = 1_000; back <= MAX_LOOKBACK_MS && prev === undefined; back *= 2) {
    const candidate = next(now - back);
    if (candidate <= now) prev = candidate;
  }
  if (prev === undefined) return { at: after, period: next(after) - after };
  for (let n = next(prev); n <= now; n = next(n)) prev = n;
  const at = now - prev <= after - now ? prev : after;
  return { at, period: next(at) - at };
}
