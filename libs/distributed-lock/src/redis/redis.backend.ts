import { Messages } from '../distributed-lock.messages';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockLostError } from '../errors/lock-lost.error';
import { argumentError } from '../options/validators';
import type {
  BackendAcquireOptions,
  BackendContext,
  BackendHealth,
  BackendHeldKey,
  BackendHolder,
  BackendListQuery,
  BackendLock,
  LockBackend,
} from '../backend/lock-backend.interface';
import type { ResolvedRedisOptions } from './resolve-redis-options';
import { isCluster, RedisInstances, type LockClient } from './redis-instances';
import { newLockValue } from '../backend/lock-value';
import { deadlineOf, extended, granted, keyField, leaseOf } from '../backend/validity';
import {
  ACQUIRE,
  ACQUIRE_PERMIT,
  CLAIM,
  EXTEND,
  FENCE,
  FORCE_RELEASE,
  RELEASE,
  TAKE_PERMIT,
  clockFloor,
} from './lock.scripts';
import { forcedOn, listRedis } from './redis-admin';
import { inspectRedis } from './redis-inspect';
import { limitOf, permitKeys } from '../backend/permits';
import { toPermitVote, type PermitVote } from './permit-vote';
import { tryPermit, type PermitEngine } from './redis-permits';
import { vote, type Vote } from './quorum';
import { checkSameSlot, fenceKeyFor, FENCE_NAMESPACE } from './redis-keys';
import { ReleaseQueue } from './release-queue';
import { ReleaseWaiters } from './release-waiters';
import {
  splitPause,
  splitVote,
  SplitVote,
  SPLIT_RETRIES,
  FOR_ONE,
  REFUSED,
  toAcquireVote,
  toBinaryVote,
  voteFailure,
  withTimeout,
} from './redis-votes';
import { StallWatch } from './stall-watch';
import { WriteBatch } from './write-batch';
import { monotonicNow } from '../utils/clock';

/** A lock as the Redis backend holds it. @internal */
interface RedisLock extends BackendLock {
  /** The random lock value (never logged). */
  readonly value: string;
  /** Redis keys of the locks (their fencing counters are only needed while acquiring). */
  readonly redisKeys: string[];
}

type Script = (numKeys: number, ...args: Array<string | number>) => Promise<unknown>;
interface ScriptClient {
  dlockAcquire: Script;
  dlockFence: Script;
  dlockExtend: Script;
  dlockRelease: Script;
  dlockForce: Script;
  dlockAcquirePermit: Script;
  dlockTakePermit: Script;
  dlockClaim: Script;
}

/** Every script the backend runs. */
const SCRIPTS = [ACQUIRE, FENCE, EXTEND, RELEASE, ACQUIRE_PERMIT, TAKE_PERMIT, CLAIM];

const SCRIPT_NAMES: ReadonlyArray<keyof ScriptClient> = [
  'dlockAcquire',
  'dlockFence',
  'dlockExtend',
  'dlockRelease',
  'dlockForce',
  'dlockAcquirePermit',
  'dlockTakePermit',
  'dlockClaim',
];

/**
 * Instance `i`'s scripts, each sent through the write batch (write-batch.ts): every script call of
 * the backend is batched here, in one place, instead of at each call site.
 */
function batched(client: ScriptClient, batch: WriteBatch, i: number): ScriptClient {
  const scripts = {} as Record<keyof ScriptClient, Script>;
  for (const name of SCRIPT_NAMES) {
    const send = client[name].bind(client);
    scripts[name] = (numKeys, ...args) => {
      batch.hold(i);
      return send(numKeys, ...args);
    };
  }
  return scripts;
}

/** Limited keys whose permit key lists are kept (see `permitKeysOf`). */
const PERMIT_KEY_CACHE = 1_000;

/**
 * The default backend: the Redlock algorithm over N independent Redis instances, with fencing tokens,
 * on our own Lua scripts (docs/SAFETY.md says why they replaced `@sesamecare-oss/redlock`'s). Owns
 * everything Redis-specific: connections or borrowed clients, scripts, key layout, the quorum.
 * Validity is timed with the monotonic clock, and every outcome is decided as soon as a majority
 * makes it certain.
 * @internal
 */
export class RedisLockBackend implements LockBackend {
  readonly name = 'redis';
  /** @see LockBackend.limits */
  readonly limits = true;
  /** This replica's identity, stored after the secret in every lock value (from `connect`). */
  private identity = '';
  private readonly instances: RedisInstances;
  private readonly clients: LockClient[];
  private readonly keyPrefix: string;
  private readonly driftFactor: number;
  private readonly commandTimeout: number;
  private readonly scripted: ScriptClient[];
  private readonly watch: StallWatch;
  /** Coalesces each turn's commands per connection into one socket write (write-batch.ts). */
  private readonly batch: WriteBatch;
  private readonly waiters: ReleaseWaiters;
  /** ARGV[2] of the release script: '1' announces releases to waiters. */
  private readonly publish: '0' | '1';
  /** Owner-checked releases, re-sent to an instance whose connection dropped (release-queue.ts). */
  private readonly releases: ReleaseQueue;
  /** ioredis' own `keyPrefix` of the Cluster clients: it is part of the key Redis hashes. */
  private readonly clusterPrefix: string;
  /** Some instance is a Redis Cluster: every script's keys must share a slot. */
  private readonly cluster: boolean;
  /** `keyPrefix` could make a lock key look like a fencing counter (e.g. `''` and `fence:x`). */
  private readonly prefixMayCollide: boolean;
  private readonly permitEngine: PermitEngine;
  /** `limit/key` → the keys of its permits and counters, most recently used last. */
  private readonly permitKeyCache = new Map<string, { redisKeys: string[]; fenceKeys: string[] }>();

  constructor(options: ResolvedRedisOptions) {
    this.instances = new RedisInstances(options, options.logger);
    const clients = (this.clients = this.instances.clients);
    this.keyPrefix = options.keyPrefix;
    this.driftFactor = options.driftFactor;
    this.commandTimeout = options.commandTimeout;
    const keyPrefix = this.keyPrefix;
    this.cluster = clients.some(isCluster);
    this.clusterPrefix = clients.find(isCluster)?.options?.keyPrefix ?? '';
    this.watch = new StallWatch(clients.length, options.commandTimeout);
    this.batch = new WriteBatch(clients);
    this.waiters = new ReleaseWaiters(clients);
    this.publish = this.waiters.enabled ? '1' : '0';
    this.releases = new ReleaseQueue(clients, (i, keys, value) =>
      this.scripted[i].dlockRelease(keys.length, ...keys, value, this.publish),
    );
    this.prefixMayCollide =
      FENCE_NAMESPACE.startsWith(keyPrefix) || keyPrefix.startsWith(FENCE_NAMESPACE);
    this.scripted = clients.map((client, i) => {
      const c = client as LockClient & Partial<ScriptClient>;
      if (typeof c.dlockAcquire !== 'function') {
        // ioredis runs these by EVALSHA and falls back to EVAL when the script is not cached yet.
        client.defineCommand('dlockAcquire', { lua: ACQUIRE });
        client.defineCommand('dlockFence', { lua: FENCE });
        client.defineCommand('dlockExtend', { lua: EXTEND });
        client.defineCommand('dlockRelease', { lua: RELEASE });
      }
      if (typeof c.dlockForce !== 'function')
        client.defineCommand('dlockForce', { lua: FORCE_RELEASE });
      if (typeof c.dlockClaim !== 'function') client.defineCommand('dlockClaim', { lua: CLAIM });
      if (typeof c.dlockAcquirePermit !== 'function') {
        client.defineCommand('dlockAcquirePermit', { lua: ACQUIRE_PERMIT });
        client.defineCommand('dlockTakePermit', { lua: TAKE_PERMIT });
      }
      return batched(c as unknown as ScriptClient, this.batch, i);
    });
    this.permitEngine = this.createPermitEngine();
  }

  async connect(context?: BackendContext): Promise<void> {
    this.identity = context?.identity ?? '';
    await this.instances.connect();
    // Cache the scripts now: otherwise the first burst of EVALSHA comes back NOSCRIPT and is re-sent
    // whole as EVAL, which is slow enough to look like a stall. Best effort: an ACL without
    // `+script|load` only loses the head start (ioredis still falls back to EVAL).
    await Promise.all(
      this.clients.map((client) =>
        isCluster(client) || client.status !== 'ready'
          ? Promise.resolve([])
          : Promise.all(SCRIPTS.map((lua) => client.script('LOAD', lua).catch(() => undefined))),
      ),
    );
  }

  async close(): Promise<void> {
    this.releases.close();
    this.waiters.close();
    this.watch.stop();
    await this.instances.close();
  }

  /** Sleeps until a release of one of `keys` is announced, or `timeoutMs` (see ReleaseWaiters). */
  waitForRelease(keys: string[], timeoutMs: number): Promise<void> {
    return this.waiters.wait(
      keys.map((k) => this.redisKey(k)),
      timeoutMs,
    );
  }

  /** PINGs every instance (bounded by the command timeout); `up` counts the answers. */
  async health(): Promise<BackendHealth> {
    const answers = await Promise.all(
      this.clients.map((client) =>
        withTimeout(client.ping(), this.commandTimeout).then(
          (reply) => reply === 'PONG',
          () => false,
        ),
      ),
    );
    const up = answers.filter(Boolean).length;
    return { instances: this.clients.length, up, quorum: Math.floor(this.clients.length / 2) + 1 };
  }

  /** The Redis key of a lock. */
  redisKey(key: string): string {
    return this.keyPrefix + key;
  }

  /**
   * Redis keys of the locks and of their fencing counters, checked before any I/O: a lock key may not
   * fall in the counters' namespace, and on a Cluster a lock's keys must share one slot.
   * @throws InvalidLockArgumentError
   */
  private keysOf(keys: string[]): { redisKeys: string[]; fenceKeys: string[] } {
    if (keys.length === 1 && !this.prefixMayCollide && !this.cluster) {
      // The common case, without the checks that cannot fail here (same result as below).
      const full = this.keyPrefix + keys[0];
      return { redisKeys: [full], fenceKeys: [FENCE_NAMESPACE + full] };
    }
    const redisKeys = keys.map((k) => this.redisKey(k));
    if (this.prefixMayCollide) {
      redisKeys.forEach((full, i) => {
        if (full.startsWith(FENCE_NAMESPACE)) {
          throw argumentError(keyField(keys, i), Messages.fenceNamespace(full));
        }
      });
    }
    if (this.cluster) checkSameSlot(redisKeys.map((k) => this.clusterPrefix + k));
    const fenceKeys = redisKeys.map((full, i) =>
      fenceKeyFor(full, this.cluster, keyField(keys, i), this.clusterPrefix),
    );
    return { redisKeys, fenceKeys };
  }

  /**
   * The Redis keys of every permit of `key` and of their counters (as `keysOf`), remembered for
   * the keys used last: building and checking 2 × limit keys per call cost more than the script.
   */
  private permitKeysOf(key: string, limit: number): { redisKeys: string[]; fenceKeys: string[] } {
    const id = `${limit}/${key}`;
    let known = this.permitKeyCache.get(id);
    if (known === undefined) {
      known = this.keysOf(permitKeys(key, limit));
      if (this.permitKeyCache.size >= PERMIT_KEY_CACHE) {
        this.permitKeyCache.delete(this.permitKeyCache.keys().next().value!);
      }
    } else this.permitKeyCache.delete(id);
    this.permitKeyCache.set(id, known);
    return known;
  }

  /**
   * Acquires `keys` for `ttl` ms on a majority and issues a fencing token. A vote that nobody won is
   * undone and tried again (see `SPLIT_RETRIES`) before it counts as busy.
   * @throws LockBusyError when a majority answered and another owner holds it
   * @throws LockUnavailableError when no majority answered, or too little validity was left
   * @throws InvalidLockArgumentError when the keys cannot be locked together here (before any I/O)
   */
  async acquire(
    keys: string[],
    ttl: number,
    options?: BackendAcquireOptions,
  ): Promise<BackendLock> {
    const limit = limitOf(options);
    if (limit > 1) return this.acquirePermit(keys, ttl, limit);
    const { redisKeys, fenceKeys } = this.keysOf(keys);
    for (let attempt = 0; ; attempt += 1) {
      const outcome = await this.tryOnce(keys, redisKeys, fenceKeys, ttl, options?.since);
      if (!(outcome instanceof SplitVote)) return outcome;
      if (attempt >= SPLIT_RETRIES) throw outcome.busy;
      await splitPause(attempt);
    }
  }

  /**
   * Takes one of the `limit` permits of `keys[0]` on a majority (redis-permits.ts); split votes are
   * undone and retried as in `acquire`. Extend and release then act on that permit's key alone.
   */
  private async acquirePermit(keys: string[], ttl: number, limit: number): Promise<BackendLock> {
    const { redisKeys, fenceKeys } = this.permitKeysOf(keys[0], limit);
    for (let attempt = 0; ; attempt += 1) {
      const outcome = await tryPermit(this.permitEngine, keys, redisKeys, fenceKeys, ttl);
      if ('lock' in outcome) return outcome.lock;
      if (attempt >= SPLIT_RETRIES) throw outcome.split;
      await splitPause(attempt);
    }
  }

  /** What `tryPermit` needs of this backend (built once, in the constructor). */
  private createPermitEngine(): PermitEngine {
    return {
      instances: this.clients.length,
      driftFactor: this.driftFactor,
      newValue: () => newLockValue(this.identity),
      acquireOn: (i, keys, fences, value, ttl, floor, from) =>
        this.watch.track(
          i,
          this.scripted[i].dlockAcquirePermit(
            2 * keys.length,
            ...keys,
            ...fences,
            value,
            ttl,
            keys.length,
            floor,
            from,
          ),
          toPermitVote,
          // track() hands back what toPermitVote returned, or a failed vote: a PermitVote either way.
        ) as Promise<PermitVote>,
      takeOn: (i, keys, permit, fence, value, ttl, floor) =>
        this.watch.track(
          i,
          this.scripted[i].dlockTakePermit(
            keys.length + 1,
            ...keys,
            fence,
            value,
            ttl,
            permit + 1,
            floor,
            this.publish,
          ),
          toAcquireVote,
        ),
      fence: (key, fence, value, token) =>
        vote(this.clients.length, (i) =>
          this.watch.track(
            i,
            this.scripted[i].dlockFence(2, key, fence, value, token, 1),
            toBinaryVote,
          ),
        ),
      undo: (tally, keys, value, until) => this.releases.undo(tally, keys, value, until),
      releaseOn: (i, keys, value, until) => this.releases.releaseOn(i, keys, value, until),
      failure: (tally, keys) => voteFailure(tally, keys, 'busy'),
      splitVote: (tally, asks, start) => splitVote(tally, asks, start, this.commandTimeout),
      discard: (lock) => this.discard(lock),
    };
  }

  /**
   * Takes `key` for `ttl` ms on a majority and never gives it back (a cron tick claim): no fencing
   * counter, so claims leave nothing behind once they expire. Split votes are undone and retried as
   * in `acquire`.
   * @returns false when another owner has it
   * @throws LockUnavailableError when no majority answered
   */
  async claim(key: string, ttl: number): Promise<boolean> {
    const full = this.redisKey(key);
    for (let attempt = 0; ; attempt += 1) {
      const start = monotonicNow();
      const value = newLockValue(this.identity);
      const asks = this.scripted.map((client, i) =>
        this.watch.track(i, client.dlockClaim(1, full, value, ttl), toBinaryVote),
      );
      const tally = await vote(asks.length, (i) => asks[i]);
      if (tally.ok) return true;
      this.releases.undo(tally, [full], value, start + ttl);
      const error = voteFailure(tally, [key], 'busy');
      if (!(error instanceof LockBusyError)) throw error;
      if (attempt >= SPLIT_RETRIES || !(await splitVote(tally, asks, start, this.commandTimeout)))
        return false;
      await splitPause(attempt);
    }
  }

  /**
   * Sets the lock's TTL to `ttl` ms from now, if it is still ours on a majority. An extension whose
   * validity has run out by the time the majority answered is not handed back: the lock counts as
   * lost and its keys are deleted.
   * @throws LockLostError when it is not ours any more, or the extension came back too late
   * @throws LockUnavailableError when no majority answered
   */
  async extend(held: BackendLock, keys: string[], ttl: number): Promise<BackendLock> {
    const lock = held as RedisLock;
    const start = monotonicNow();
    if (start >= lock.deadline)
      throw new LockLostError(keys, Messages.lost(keys, 'expired before it could be extended'));
    const tally = await vote(this.clients.length, (i) =>
      this.watch.track(
        i,
        this.scripted[i].dlockExtend(lock.redisKeys.length, ...lock.redisKeys, lock.value, ttl),
        toBinaryVote,
      ),
    );
    if (!tally.ok) throw voteFailure(tally, keys, 'lost');
    return extended({ ...lock, ...leaseOf(start, ttl, this.driftFactor) }, keys, ttl, (l) =>
      this.discard(l),
    );
  }

  /**
   * Deletes the keys where they still hold our value.
   * @throws LockLostError when a majority no longer held them for us
   * @throws LockUnavailableError when no majority answered
   */
  async release(held: BackendLock, keys: string[]): Promise<void> {
    const lock = held as RedisLock;
    const n = lock.redisKeys.length;
    // An instance whose connection was down or reset gets the release again once it is back (as an
    // undo does), else it would keep the key for the rest of its TTL with nobody holding it.
    const until = lock.deadline + 1_000;
    const toVote = n === 1 ? toBinaryVote : (r: unknown): Vote => (r === n ? FOR_ONE : REFUSED);
    const tally = await vote(this.clients.length, (i) =>
      this.watch.track(i, this.releases.sendRelease(i, lock.redisKeys, lock.value, until), toVote),
    );
    if (!tally.ok) throw voteFailure(tally, keys, 'lost');
  }

  /** Deletes the lock's keys wherever they still hold its value, without waiting or reporting. */
  discard(held: BackendLock, _keys?: string[]): void {
    const lock = held as RedisLock;
    // Past the lock's own deadline (plus a margin for drift) the keys have expired anyway.
    const until = lock.deadline + 1_000;
    this.releases.releaseAll(lock.redisKeys, lock.value, until);
  }

  /** True when a majority of instances hold `key`. @throws LockUnavailableError without a majority of answers */
  async isLocked(key: string): Promise<boolean> {
    const full = this.redisKey(key);
    const tally = await vote(this.clients.length, (i) =>
      this.watch.track(i, this.clients[i].exists(full), (r): Vote =>
        r === 1 ? { kind: 'for', value: 1 } : { kind: 'refused' },
      ),
    );
    if (tally.ok) return true;
    if (tally.granted.size + tally.refused >= tally.quorum) return false;
    throw voteFailure(tally, [key], 'busy');
  }

  /**
   * The keys a majority of instances hold (SCAN over every instance, never KEYS; see redis-admin.ts).
   * @throws LockUnavailableError when fewer than a majority could be read
   */
  list(query: BackendListQuery): Promise<BackendHeldKey[]> {
    return listRedis(
      {
        clients: this.clients,
        keyPrefix: this.keyPrefix,
        cluster: this.cluster,
        clusterPrefix: this.clusterPrefix,
        roundTripMs: Math.max(2 * this.commandTimeout, 2_000),
      },
      query,
    );
  }

  /** Who holds `key` on a majority, read in one round trip (see redis-inspect.ts). */
  inspect(key: string): Promise<BackendHolder | null> {
    const { redisKeys, fenceKeys } = this.keysOf([key]);
    const ctx = { clients: this.clients, timeoutMs: this.commandTimeout };
    return inspectRedis(ctx, key, redisKeys[0], fenceKeys[0]);
  }

  /**
   * Frees `key` on every instance whoever holds it, advancing its fencing counter in the same script
   * (FORCE_RELEASE), and announces the release to waiters.
   * @returns true when some instance held it
   * @throws LockUnavailableError when fewer than a majority answered
   */
  async forceRelease(key: string): Promise<boolean> {
    const { redisKeys, fenceKeys } = this.keysOf([key]);
    const floor = clockFloor();
    const votes = await Promise.all(
      this.scripted.map((client, i) =>
        this.watch.track(
          i,
          client.dlockForce(2, redisKeys[0], fenceKeys[0], floor, this.publish),
          (reply): Vote => ({ kind: 'for', value: Number(reply) }),
        ),
      ),
    );
    return forcedOn(key, votes);
  }

  /** One Redlock round. */
  private async tryOnce(
    keys: string[],
    redisKeys: string[],
    fenceKeys: string[],
    ttl: number,
    since?: number,
  ): Promise<RedisLock | SplitVote> {
    const start = monotonicNow();
    const value = newLockValue(this.identity, since);
    const n = keys.length;
    // The client clock in microseconds floors the counters (see lock.scripts.ts); one value for
    // every instance of this attempt.
    const floor = clockFloor();
    const asks: Array<Promise<Vote>> = [];
    if (n === 1) {
      // One key: the arguments as they are, without building and spreading an array per instance.
      const [key] = redisKeys;
      const [fence] = fenceKeys;
      for (let i = 0; i < this.scripted.length; i += 1) {
        const sent = this.scripted[i].dlockAcquire(2, key, fence, value, ttl, 1, floor);
        asks.push(this.watch.track(i, sent, toAcquireVote));
      }
    } else {
      const args = [...redisKeys, ...fenceKeys, value, ttl, n, floor];
      for (let i = 0; i < this.scripted.length; i += 1) {
        asks.push(
          this.watch.track(i, this.scripted[i].dlockAcquire(2 * n, ...args), toAcquireVote),
        );
      }
    }
    const tally = await vote(asks.length, (i) => asks[i]);
    if (!tally.ok) {
      this.releases.undo(tally, redisKeys, value, start + ttl);
      const error = voteFailure(tally, keys, 'busy');
      // Some instances granted (or grant late), yet no majority: a split, or a holder short of some
      // instances. Either way, undone above; worth another try after a pause.
      if (
        error instanceof LockBusyError &&
        (await splitVote(tally, asks, start, this.commandTimeout))
      ) {
        return new SplitVote(error);
      }
      throw error;
    }
    let token = 0;
    let agree = true;
    for (const t of tally.granted.values()) {
      if (token !== 0 && t !== token) agree = false;
      if (t > token) token = t;
    }
    // `granted` below measures the validity; here only the deadline is needed.
    const deadline = deadlineOf(start, ttl, this.driftFactor);
    const lock: RedisLock = { deadline, validity: 0, value, fencingToken: token, redisKeys };
    // Counters that disagree (or several keys) need `token` written back to a majority that still
    // holds the lock, so every later majority meets a counter at least this high (docs/SAFETY.md).
    if (!agree || n > 1) {
      const fenced = await vote(this.clients.length, (i) =>
        this.watch.track(
          i,
          this.scripted[i].dlockFence(2 * n, ...redisKeys, ...fenceKeys, value, token, n),
          toBinaryVote,
        ),
      );
      if (!fenced.ok) {
        this.discard(lock, keys);
        throw voteFailure(fenced, keys, 'busy');
      }
    }
    return granted(lock, keys, ttl, (l) => this.discard(l));
  }
}
