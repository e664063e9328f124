import { LEADER_METADATA, LEADER_MISUSE_METADATA } from '../distributed-lock.constants';
import { Messages } from '../distributed-lock.messages';
import type { LeaderOptions } from './leader.interface';

/** What `@Leader()` records on the method, read back by the explorer at bootstrap. @internal */
export interface LeaderMetadata {
  /** The options as given (a string is `{ name }`). */
  readonly options: LeaderOptions;
  readonly className: string;
  readonly methodName: string;
}

/** A misuse found when the decorator was applied, reported by `app.init()`. @internal */
export interface LeaderMisuse {
  readonly where: string;
  readonly message: string;
}

function recordMisuse(target: object, misuse: LeaderMisuse): void {
  const ctor = (target as { constructor: object }).constructor;
  const known = (Reflect.getOwnMetadata(LEADER_MISUSE_METADATA, ctor) as LeaderMisuse[]) ?? [];
  Reflect.defineMetadata(LEADER_MISUSE_METADATA, [...known, misuse], ctor);
}

/**
 * Makes the decorated provider method a leader-only worker: every replica campaigns for the
 * election from application bootstrap, and exactly one at a time runs the method, with the
 * {@link Leadership} as its argument, while its lease is extended. Check `leadership.signal` before
 * every side effect and pass `leadership.term` to what you write to (a fencing token). When the
 * method returns or throws (logged with the handler's name), the replica resigns and campaigns again
 * after a pause; at shutdown `signal` aborts (reason `'shutdown'`), the method gets
 * `shutdownTimeout` to return, and a waiting replica takes over one round trip after the release.
 *
 * The method is left as it is (calling it yourself runs it without any election). Options are
 * checked at bootstrap: an empty name, a TTL below the store's minimum, an unknown store, `@Leader`
 * on a property or twice on one method fail `app.init()` with `DistributedLockConfigError` naming
 * the handler.
 *
 * @param options the election's name, or `{ name, ttl, store }`; the name defaults to
 *   `'ClassName.methodName'`
 * @example
 * ```ts
 * @Injectable()
 * class OutboxRelay {
 *   @Leader('outbox-relay')
 *   async relay(leadership: Leadership) {
 *     while (!leadership.signal.aborted) await this.sendBatch(leadership.term);
 *   }
 * }
 * ```
 */
export function Leader(options: string | LeaderOptions = {}): MethodDecorator {
  return (target, propertyKey, descriptor) => {
    const className = (target as { constructor: { name: string } }).constructor.name;
    const methodName = String(propertyKey);
    const where = `${className}.${methodName}`;
    const method = descriptor?.value as unknown;
    if (typeof method !== 'function') {
      recordMisuse(target, { where, message: Messages.leaderMethodsOnly });
      return descriptor;
    }
    if (Reflect.hasOwnMetadata(LEADER_METADATA, method)) {
      recordMisuse(target, { where, message: Messages.leaderTwice });
      return descriptor;
    }
    const given = typeof options === 'string' ? { name: options } : options;
    const metadata: LeaderMetadata = {
      // Anything else is kept as given and refused at bootstrap, naming the handler.
      options: given !== null && typeof given === 'object' ? { ...given } : given,
      className,
      methodName,
    };
    Reflect.defineMetadata(LEADER_METADATA, metadata, method);
    return descriptor;
  };
}
