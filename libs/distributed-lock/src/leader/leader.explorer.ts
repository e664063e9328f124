import { Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { LEADER_METADATA, LEADER_MISUSE_METADATA } from '../distributed-lock.constants';
import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import { LockManager } from '../lock-manager';
import { resolveRun } from '../options/run-options';
import type { ErrorFactory } from '../options/validators';
import { LeaderCampaign, type LeaderPlan } from './leader-campaign';
import type { LeaderMetadata, LeaderMisuse } from './leader.decorator';
import type { Leadership } from './leader.interface';
import { checkLeaderName } from './leader-term';

/** The error factory for one `@Leader` method: fields read `Class.method @Leader <field>`. */
function leaderError(where: string): ErrorFactory {
  return (field, message) => new DistributedLockConfigError(`${where} @Leader ${field}`, message);
}

/**
 * Resolves one `@Leader` method against the module options and stores.
 * @throws DistributedLockConfigError naming the handler and the option
 * @internal
 */
export function planLeader(meta: LeaderMetadata, manager: LockManager): LeaderPlan {
  const handler = `${meta.className}.${meta.methodName}`;
  const fail = leaderError(handler);
  const o = meta.options;
  if (o === null || typeof o !== 'object') throw fail('options', 'must be a name or an object');
  const name = checkLeaderName(o.name ?? handler, fail);
  if (o.store !== undefined && (typeof o.store !== 'string' || o.store.length === 0)) {
    throw fail('store', 'must be the name of a store (a non-empty string)');
  }
  const store = manager.storeName(o.store, fail);
  const run = resolveRun({ ttl: o.ttl }, manager.options, fail);
  return { name, store, run, handler };
}

/**
 * Finds every `@Leader` method at bootstrap (before any store connects, through
 * `LockManager.beforeConnect`, so bad options fail `app.init()` with no connection left open) and
 * starts one campaign per method and provider instance at application bootstrap.
 * @internal
 */
@Injectable()
export class LeaderExplorer implements OnApplicationBootstrap {
  private readonly found: Array<{ plan: LeaderPlan; run: (l: Leadership) => unknown }> = [];
  /** The campaigns of this app (started at bootstrap, stopped at shutdown). */
  readonly campaigns: LeaderCampaign[] = [];

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly manager: LockManager,
  ) {
    manager.beforeConnect(() => this.explore());
  }

  /** Starts campaigning for every `@Leader` method. */
  onApplicationBootstrap(): void {
    for (const { plan, run } of this.found) {
      const campaign = new LeaderCampaign(this.manager, plan, run);
      this.campaigns.push(campaign);
      campaign.start();
    }
  }

  /** Visits every provider and controller; throws for a misused decorator or bad options. */
  private explore(): void {
    const names = new Map<string, string>();
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      const type = wrapper.metatype as unknown;
      if (typeof type !== 'function') continue;
      const proto = (type as { prototype?: object }).prototype;
      if (!proto) continue;
      const misuses = Reflect.getMetadata(LEADER_MISUSE_METADATA, type) as
        LeaderMisuse[] | undefined;
      if (misuses?.length) {
        throw new DistributedLockConfigError(`${misuses[0].where} @Leader`, misuses[0].message);
      }
      for (const methodName of this.scanner.getAllMethodNames(proto)) {
        const fn = (proto as Record<string, unknown>)[methodName];
        if (typeof fn !== 'function') continue;
        const meta = Reflect.getMetadata(LEADER_METADATA, fn) as LeaderMetadata | undefined;
        if (!meta) continue;
        const plan = planLeader(meta, this.manager);
        if (!wrapper.isDependencyTreeStatic()) {
          throw leaderError(plan.handler)(
            'provider',
            'must not be request-scoped (it runs from bootstrap)',
          );
        }
        const instance = wrapper.instance as Record<string, unknown> | undefined;
        if (!instance) continue;
        const key = `${plan.store}\u0000${plan.name}`;
        const other = names.get(key);
        if (other !== undefined && other !== plan.handler) {
          throw leaderError(plan.handler)(
            'name',
            `"${plan.name}" is already the election of ${other}; one election runs one method`,
          );
        }
        names.set(key, plan.handler);
        const method = fn as (l: Leadership) => unknown;
        this.found.push({ plan, run: (l) => method.call(instance, l) });
      }
    }
  }
}
