import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { createRequire } from 'node:module';
import { MAX_TIMER_MS } from '../distributed-lock.constants';
import { Messages } from '../distributed-lock.messages';
import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import { InvalidLockArgumentError } from '../errors/invalid-lock-argument.error';
import type { LockManager } from '../lock-manager';
import { ExclusivePlans } from './exclusive-plans';
import { resolveRun } from '../options/run-options';
import type { ErrorFactory } from '../options/validators';
import type { ExclusiveMetadata, ExclusiveOptions } from './exclusive-options.interface';
import { checkExclusiveFields } from './exclusive-plan';
import { runExclusiveHandler } from './exclusive.runner';

/** Options of `ExclusiveScheduler.addCronJob`: those of `@Exclusive()`, and the cron's time zone. */
export interface ExclusiveCronOptions extends ExclusiveOptions {
  /** IANA zone the cron expression is evaluated in (as `@Cron(..., { timeZone })`). @default the process zone */
  timeZone?: string;
}

/** A job added at runtime: what it does on each firing (its return value is awaited). */
export type ExclusiveJob = () => unknown;

/** The part of `@nestjs/schedule`'s `SchedulerRegistry` used here (an optional peer). */
interface RegistryLike {
  doesExist(type: 'cron' | 'interval' | 'timeout', name: string): boolean;
  addCronJob(name: string, job: unknown): void;
  addInterval(name: string, id: NodeJS.Timeout): void;
  addTimeout(name: string, id: NodeJS.Timeout): void;
}
interface CronJobLike {
  start(): void;
}
interface CronModule {
  CronJob: { from(params: Record<string, unknown>): CronJobLike };
}
interface ScheduleModuleLike {
  SchedulerRegistry: abstract new (...args: never[]) => RegistryLike;
}

// `@nestjs/schedule`'s own metadata keys and kinds (plain values: the package is optional).
const SCHEDULER_TYPE = 'SCHEDULER_TYPE';
const SCHEDULE_CRON_OPTIONS = 'SCHEDULE_CRON_OPTIONS';
const KIND = { cron: 1, timeout: 2, interval: 3 } as const;

let schedule: { module: ScheduleModuleLike; cron: CronModule } | null | undefined;

/** `@nestjs/schedule` and the very `cron` package it schedules with, or null when not installed. */
function loadSchedule(): { module: ScheduleModuleLike; cron: CronModule } | null {
  if (schedule === undefined) {
    try {
      const path = require.resolve('@nestjs/schedule');
      const load = createRequire(path);
      schedule = { module: load(path) as ScheduleModuleLike, cron: load('cron') as CronModule };
    } catch {
      schedule = null;
    }
  }
  return schedule;
}

function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** Option errors of a call read `options.<field>`. */
const optionError: ErrorFactory = (field, message) =>
  new InvalidLockArgumentError(`options.${field}`, message);

/**
 * Jobs added at runtime (per-tenant schedules, jobs read from a database) with exactly the
 * behaviour of `@Exclusive()` on `@Cron` / `@Interval` / `@Timeout`: each firing runs on one replica
 * (cron ticks are claimed by their scheduled slot, in the job's time zone), skips when busy, emits
 * events and metrics with the job's name as `handler`, and is waited for on shutdown. Jobs are
 * registered in `@nestjs/schedule`'s `SchedulerRegistry` under their name and started; deleting them
 * there stops them. The lock key defaults to the name, so the same name excludes across replicas.
 * An error thrown by a job is logged, never rethrown into the scheduler.
 *
 * Needs `@nestjs/schedule` installed and `ScheduleModule.forRoot()` imported. Callable from
 * `onModuleInit` on.
 *
 * @example
 * ```ts
 * constructor(private readonly jobs: ExclusiveScheduler) {}
 *
 * onModuleInit() {
 *   for (const tenant of this.tenants)
 *     this.jobs.addCronJob(`report:${tenant.id}`, tenant.cron, () => this.report(tenant), {
 *       timeZone: tenant.zone,
 *     });
 * }
 * ```
 */
@Injectable()
export class ExclusiveScheduler {
  /** @internal */
  constructor(
    private readonly plans: ExclusivePlans,
    private readonly moduleRef: ModuleRef,
  ) {}

  private get manager(): LockManager {
    return this.plans.manager;
  }

  /**
   * Adds and starts a cron job named `name`, locked like `@Cron(cronTime, { timeZone })` +
   * `@Exclusive(options)`.
   * @param cronTime a cron expression (`'0 *\/5 * * * *'`), as `@Cron` takes
   * @throws InvalidLockArgumentError naming `name`, `cronTime`, `handler`, `options.timeZone` or
   * `options.<field>` (an invalid expression, a duplicate name, a handler that is not a function)
   * @throws DistributedLockConfigError when `@nestjs/schedule` is missing or not imported
   */
  addCronJob(
    name: string,
    cronTime: string,
    handler: ExclusiveJob,
    options: ExclusiveCronOptions = {},
  ): void {
    const registry = this.registry('cron', name);
    checkHandler(handler);
    if (typeof cronTime !== 'string' || cronTime.trim() === '') {
      throw new InvalidLockArgumentError(
        'cronTime',
        Messages.schedulerCron(shown(cronTime), 'not a string'),
      );
    }
    const { timeZone, ...exclusive } = checkOptions(options);
    if (timeZone !== undefined && !validZone(timeZone)) {
      throw new InvalidLockArgumentError(
        'options.timeZone',
        Messages.schedulerTimeZone(shown(timeZone)),
      );
    }
    const fire = this.firing(name, KIND.cron, exclusive, handler, { cronTime, timeZone });
    let job: CronJobLike;
    try {
      job = loadSchedule()!.cron.CronJob.from({
        cronTime,
        onTick: fire,
        start: false,
        ...(timeZone === undefined ? {} : { timeZone }),
      });
    } catch (error) {
      throw new InvalidLockArgumentError(
        'cronTime',
        Messages.schedulerCron(
          shown(cronTime),
          error instanceof Error ? error.message : String(error),
        ),
      );
    }
    registry.addCronJob(name, job);
    job.start();
  }

  /**
   * Adds and starts a job named `name` that fires every `ms` milliseconds, locked like
   * `@Interval(ms)` + `@Exclusive(options)`.
   * @throws InvalidLockArgumentError naming `name`, `ms`, `handler` or `options.<field>`
   * @throws DistributedLockConfigError when `@nestjs/schedule` is missing or not imported
   */
  addInterval(
    name: string,
    ms: number,
    handler: ExclusiveJob,
    options: ExclusiveOptions = {},
  ): void {
    const registry = this.registry('interval', name);
    checkHandler(handler);
    checkMs(ms);
    const fire = this.firing(name, KIND.interval, checkOptions(options), handler);
    registry.addInterval(name, setInterval(fire, ms));
  }

  /**
   * Adds and starts a job named `name` that fires once after `ms` milliseconds, locked like
   * `@Timeout(ms)` + `@Exclusive(options)`.
   * @throws InvalidLockArgumentError naming `name`, `ms`, `handler` or `options.<field>`
   * @throws DistributedLockConfigError when `@nestjs/schedule` is missing or not imported
   */
  addTimeout(
    name: string,
    ms: number,
    handler: ExclusiveJob,
    options: ExclusiveOptions = {},
  ): void {
    const registry = this.registry('timeout', name);
    checkHandler(handler);
    checkMs(ms);
    const fire = this.firing(name, KIND.timeout, checkOptions(options), handler);
    registry.addTimeout(name, setTimeout(fire, ms));
  }

  /** The app's `SchedulerRegistry`, with `name` checked free for `type`. */
  private registry(type: 'cron' | 'interval' | 'timeout', name: unknown): RegistryLike {
    if (typeof name !== 'string' || name.length === 0) {
      throw new InvalidLockArgumentError('name', Messages.schedulerName(shown(name)));
    }
    const loaded = loadSchedule();
    let registry: RegistryLike | undefined;
    try {
      registry = loaded
        ? this.moduleRef.get(loaded.module.SchedulerRegistry, { strict: false })
        : undefined;
    } catch {
      registry = undefined;
    }
    if (!registry)
      throw new DistributedLockConfigError('ExclusiveScheduler', Messages.schedulerMissing);
    const label = type === 'cron' ? 'cron job' : type;
    if (registry.doesExist(type, name)) {
      throw new InvalidLockArgumentError('name', Messages.schedulerDuplicate(label, name));
    }
    return registry;
  }

  /**
   * What the scheduler calls on each firing: the `@Exclusive()` runner over a function carrying the
   * schedule metadata `@Cron` / `@Interval` / `@Timeout` would put on a method, so the plan (kind,
   * skip when busy, tick claims in the job's zone) is exactly a decorated handler's. Resolved now:
   * bad options throw here, not at the first firing.
   */
  private firing(
    name: string,
    kind: number,
    options: ExclusiveOptions,
    handler: ExclusiveJob,
    cron?: { cronTime: string; timeZone?: string },
  ): () => void {
    const job = function (this: unknown) {
      return handler();
    };
    Reflect.defineMetadata(SCHEDULER_TYPE, kind, job);
    if (cron) Reflect.defineMetadata(SCHEDULE_CRON_OPTIONS, cron, job);
    const meta: ExclusiveMetadata = {
      options: { ...options, key: options.key ?? name },
      className: 'ExclusiveScheduler',
      methodName: name,
      where: name,
    };
    // The run fields and the store, against the module's options, with errors naming `options.*`;
    // then the plan itself (which would name them as a decorator's).
    resolveRun(options, this.manager.options, optionError);
    this.manager.storeName(options.store, optionError);
    this.plans.register(job, meta);
    return () => {
      runExclusiveHandler(this.plans, meta, job, undefined, job, []).then(
        undefined,
        (error: unknown) => {
          this.manager.events.notice(
            'error',
            Messages.jobFailed(name, error instanceof Error ? error.message : String(error)),
          );
        },
      );
    };
  }
}

function checkHandler(handler: unknown): void {
  if (typeof handler !== 'function') {
    throw new InvalidLockArgumentError('handler', Messages.schedulerHandler(shown(handler)));
  }
}

function checkMs(ms: unknown): void {
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 1 || ms > MAX_TIMER_MS) {
    throw new InvalidLockArgumentError('ms', Messages.schedulerMs(shown(ms)));
  }
}

/** The `@Exclusive()` fields, checked with errors naming `options.<field>`. */
function checkOptions<O extends ExclusiveOptions>(options: O): O {
  if (options === null || typeof options !== 'object') {
    throw new InvalidLockArgumentError('options', 'must be an object');
  }
  checkExclusiveFields(options, optionError);
  return options;
}

function validZone(zone: unknown): boolean {
  if (typeof zone !== 'string' || zone.length === 0) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
