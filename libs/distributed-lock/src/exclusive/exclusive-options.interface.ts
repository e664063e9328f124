/** What `@Exclusive()` does when another owner holds the lock. */
export type OnBusy = 'skip' | 'wait' | 'throw';

/**
 * A lock key: a string, or a function of the decorated method's arguments returning one.
 * @example `(orderId: string) => \`order:${orderId}\``
 */
export type ExclusiveKey = string | ((...args: never[]) => string);

/** Options of `@Exclusive()`. All times in milliseconds. */
export interface ExclusiveOptions {
  /**
   * The lock key (under the module `keyPrefix`), or a function of the method's arguments.
   * @default `ClassName.methodName`
   */
  key?: ExclusiveKey;
  /** Lock TTL; auto-extension keeps it alive while the method runs. @default the module `ttl` */
  ttl?: number;
  /**
   * When the lock is busy: `'skip'` resolves `undefined` (debug log), `'wait'` retries with backoff
   * up to `wait` ms, `'throw'` raises `LockBusyError` (HTTP routes answer 409).
   * @default 'skip' for `@Cron` / `@Interval` / `@Timeout` handlers, 'throw' for everything else
   */
  onBusy?: OnBusy;
  /** With `onBusy: 'wait'`: how long to wait. @default as the module `retry` allows */
  wait?: number;
  /** Keep extending the lock while the method runs. @default true */
  autoExtend?: boolean;
  /**
   * Keep the lock at least this long after the method started, even if it ends sooner. For jobs
   * scheduled by `@Interval` / `@Timeout` (which have no shared schedule), set it below the period
   * and above the worst clock skew between replicas.
   * @default 0
   */
  lockAtLeastFor?: number;
  /** Stop extending after this long; the lock then expires and the signal aborts. */
  lockAtMostFor?: number;
  /**
   * For `@Cron` handlers: first claim the scheduled tick (`<key>:tick:<fireTime>`, held one period,
   * never released early), so replicas whose clocks differ by up to half the period run each tick
   * exactly once. `false` uses the job lock alone.
   * @default true
   */
  claimTick?: boolean;
  /**
   * Up to `limit` invocations at once across all replicas (a counting semaphore; busy when every
   * permit is taken, then `onBusy` applies). For routes, message handlers and methods; on
   * `@Cron` / `@Interval` / `@Timeout` handlers a limit above 1 fails `app.init()` (a tick runs once).
   * An integer from 1 to 100. `LockService.current()?.permit` says which permit the run holds.
   * @default 1
   * @example `@Exclusive({ key: 'report-export', limit: 3 })`
   */
  limit?: number;
  /** Marks a key shared by several handlers on purpose, which silences the bootstrap warning. */
  sharedKey?: boolean;
  /**
   * The store to lock in: a name from the module's `stores`; an unknown name fails `app.init()`.
   * @default 'default'
   */
  store?: string;
}

/** What `@Exclusive()` stores under `EXCLUSIVE_METADATA` on the wrapped method. */
export interface ExclusiveMetadata {
  /** The options as written, after validation. */
  readonly options: ExclusiveOptions;
  /** Name of the class the decorator was applied in. */
  readonly className: string;
  /** Name of the decorated method. */
  readonly methodName: string;
  /**
   * What events, metrics and errors call the handler, when not `ClassName.methodName` (a job added
   * through `ExclusiveScheduler`: its name).
   * @internal
   */
  readonly where?: string;
}
