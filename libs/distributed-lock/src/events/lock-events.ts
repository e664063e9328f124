import type { LoggerService } from '@nestjs/common';
import { Subject, type Observable } from 'rxjs';
import { Messages } from '../distributed-lock.messages';
import type { LockEvent } from './lock-event.interface';

/** A message that is not a lock outcome (a retry, a failed release that will expire by TTL). */
interface Notice {
  readonly level: 'warn' | 'error';
  readonly message: string;
}

/**
 * The one place lock outcomes leave the library: `LockManager` emits typed events here, and
 * listeners (the logger, `LockService.events` subscribers, metrics) read them.
 * @internal
 */
export class LockEvents {
  private readonly subject = new Subject<LockEvent>();
  private readonly notices = new Subject<Notice>();
  /** Every event, for `LockService.events`. */
  readonly events: Observable<LockEvent> = this.subject.asObservable();

  /** True while anyone listens: emitters skip building events nobody reads. */
  get observed(): boolean {
    return this.subject.observed;
  }

  emit(event: LockEvent): void {
    this.subject.next(event);
  }

  /** A diagnostic line for the logger. */
  notice(level: Notice['level'], message: string): void {
    this.notices.next({ level, message });
  }

  /** Makes `logger` a listener: the library's log lines, derived from the events. */
  attachLogger(logger: LoggerService): void {
    this.notices.subscribe(({ level, message }) => {
      logger[level](message);
    });
    this.subject.subscribe((e) => logEvent(logger, e));
  }
}

function logEvent(logger: LoggerService, e: LockEvent): void {
  const key = e.keys.join(',');
  switch (e.type) {
    case 'acquired':
      if (e.handler) logger.verbose?.(Messages.acquired(e.handler, key));
      return;
    case 'lost':
      if (e.reason !== 'shutdown') logger.warn(Messages.lostLog(key, e.reason, e.handler));
      return;
    case 'skipped':
      switch (e.reason) {
        case 'busy':
          logger.debug?.(Messages.skipBusy(e.handler, key));
          return;
        case 'tick-claimed':
          logger.debug?.(Messages.skipTick(e.handler, key, e.tick ?? e.at));
          return;
        case 'shutdown':
          logger.debug?.(Messages.skipShutdown(e.handler));
          return;
        case 'unavailable':
          // Fail closed: logged once here, not rethrown for the scheduler to log again.
          logger.error(Messages.scheduledUnavailable(e.handler, e.error ?? ''));
          return;
      }
      return;
    case 'force-released':
      logger.warn(Messages.forceReleasedLog(key, e.store, e.reason));
      return;
    case 'elected':
      logger.log(Messages.leaderElected(e.handler ?? 'lead()', key, e.term));
      return;
    case 'stepped-down':
      if (e.reason === 'lost') logger.warn(Messages.leaderSteppedDown(key, e.term, e.reason));
      else logger.debug?.(Messages.leaderSteppedDown(key, e.term, e.reason));
      return;
    default:
      return;
  }
}
