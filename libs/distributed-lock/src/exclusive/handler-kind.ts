import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';

/** What kind of handler a decorated method is, read from the metadata other decorators put on it. */
export type HandlerKind = 'cron' | 'interval' | 'timeout' | 'http' | 'rpc' | 'method';

// @nestjs/schedule and @nestjs/microservices are optional peers: their metadata keys are plain strings.
const SCHEDULER_TYPE = 'SCHEDULER_TYPE';
const SCHEDULE_CRON_OPTIONS = 'SCHEDULE_CRON_OPTIONS';
const PATTERN_METADATA = 'microservices:pattern';
const SCHEDULER_KINDS: Record<number, HandlerKind> = { 1: 'cron', 2: 'timeout', 3: 'interval' };

/** @internal */
export function handlerKind(fn: object): HandlerKind {
  const scheduler = Reflect.getMetadata(SCHEDULER_TYPE, fn) as number | undefined;
  if (scheduler !== undefined && SCHEDULER_KINDS[scheduler]) return SCHEDULER_KINDS[scheduler];
  if (Reflect.getMetadata(PATTERN_METADATA, fn) !== undefined) return 'rpc';
  if (
    Reflect.getMetadata(PATH_METADATA, fn) !== undefined &&
    Reflect.getMetadata(METHOD_METADATA, fn) !== undefined
  ) {
    return 'http';
  }
  return 'method';
}

/** @internal The `@Cron` options (cronTime, timeZone, utcOffset) on a handler. */
export function cronMetadata(fn: object): {
  cronTime?: unknown;
  timeZone?: string;
  utcOffset?: number;
} {
  return (Reflect.getMetadata(SCHEDULE_CRON_OPTIONS, fn) as object | undefined) ?? {};
}

/** @internal Scheduled handlers skip when busy; `@nestjs/schedule` would log a thrown error every tick. */
export function isScheduled(kind: HandlerKind): boolean {
  return kind === 'cron' || kind === 'interval' || kind === 'timeout';
}
