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
  /** Set by the constructor: the `timeZone` option, else the process zone when there is no `utcOffset`. */
  timeZone?: string;
  /** Set by the constructor from the `utcOffset` option (minutes). */
  utcOffset?: number;
  getNextDateFrom(start: Date, timeZone?: string): { toMillis(): number };
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
 * How early a firing may come and still belong to the upcoming fire time. cron's timer callback
 * re-arms itself when it wakes before the fire time by its own clock, so a real firing is early by a
 * millisecond or two at most (the gap between computing the timeout and arming it). Fire times are
 * whole seconds apart, so the suggested min(period / 10, 50 ms) is always 50 ms; 50 ms would put a
 * firing 0.95 s late on an every-second cron exactly on the next fire time, so take 20 ms: still
 * about 10x the real early error, and it leaves lag up to period - 20 ms mapped to its own tick.
 */
const EARLY_MS = 20;

/** Most forward steps `cronTick` takes from its look-back to now. */
const MAX_WALK = 64;

/**
 * The zone `CronTime.sendAt` evaluates the expression in when cron schedules the job: the
 * `UTC±hh:mm` zone it builds from `utcOffset` (minutes), else the `timeZone` option, else the process
 * zone (the constructor stores `Intl`'s resolved zone in `timeZone` when neither option is given).
 */
function scheduleZone(time: CronTimeLike): string | undefined {
  const offset = time.utcOffset;
  if (offset === undefined) return time.timeZone;
  const hours = Math.trunc(offset / 60);
  const minutes = Math.abs(offset - hours * 60);
  const pad = (n: number) => String(Math.abs(n)).padStart(2, '0');
  return `UTC${offset < 0 ? '-' : '+'}${pad(hours)}:${pad(minutes)}`;
}

/**
 * The scheduled fire time an invocation at `now` (by this replica's clock) belongs to: the latest
 * fire time at or before `now + EARLY_MS`, evaluated in the handler's zone as cron schedules it, so
 * replicas in different process zones agree. Each replica's scheduler fires by its own clock, so
 * `now` is the fire time plus event-loop lag (always late) whatever the skew between replicas; lag
 * up to a period minus EARLY_MS keeps the tick. `undefined` when the cron time is not an expression
 * we can evaluate.
 * @internal
 */
export function cronTick(meta: CronMetadata, now: number): CronTick | undefined {
  if (typeof meta.cronTime !== 'string') return undefined;
  const CronTime = loadCronTime();
  if (!CronTime) return undefined;
  const time = new CronTime(meta.cronTime, meta.timeZone ?? null, meta.utcOffset ?? null);
  const zone = scheduleZone(time);
  /** The first fire time strictly after `from` (fire times are whole seconds). */
  const next = (from: number) => time.getNextDateFrom(new Date(from), zone).toMillis();
  const target = now + EARLY_MS;
  // Look back exponentially for a fire time <= target, then follow the chain next(next(...)) forward,
  // as cron does from one firing to the next. Right after a firing (the normal call) the first probe
  // finds it: three getNextDateFrom calls in all. Not bisection: around a fall-back hour
  // getNextDateFrom is not monotonic (from inside the repeated hour it returns the repeated wall
  // time, which a scheduler running through that night never fires), and bisection would home in on it.
  let at: number | undefined;
  for (let back = 1_000; back <= MAX_LOOKBACK_MS && at === undefined; back *= 2) {
    const candidate = next(target - back);
    if (candidate <= target) at = candidate;
  }
  if (at === undefined) at = next(target);
  else {
    // Bounded: around a fall-back hour the chain can go backwards (and with a frozen clock it would
    // cycle). Stop at the first step that does not move forward, or after MAX_WALK steps, keeping the
    // latest fire time found so far: a bounded answer at a once-a-year edge, never a blocked loop.
    let steps = 0;
    for (let n = next(at); n <= target && n > at && steps < MAX_WALK; n = next(n), steps += 1)
      at = n;
  }
  const following = next(at);
  return { at, period: following > at ? following - at : 1_000 };
}
