import {
  Etcd3,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  type IOptions,
  type IResponseHeader,
} from 'etcd3';
import { Messages } from '../distributed-lock.messages';
import type { ResolvedEtcdOptions } from './resolve-etcd-options';

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = ReturnType<NonNullable<FaultHandling['host']>>;
type Backoff = NonNullable<FaultHandling['watchBackoff']>;

/** What every etcd call gets: its own absolute deadline. */
export interface CallOptions {
  deadline: number;
}

/** A call that failed or did not answer in time; `reason` is safe to show (no lock values). */
export class EtcdFailure extends Error {
  override readonly name = 'EtcdFailure';
}

/** The cluster behind the client is not the one we issued tokens on: fail closed from now on. */
export class EtcdClusterChanged extends Error {
  override readonly name = 'EtcdClusterChanged';
}

const noEvent = () => ({ dispose: () => undefined });

/** A cockatiel-shaped policy (etcd3 only calls `execute`), without importing cockatiel. */
function policy(
  execute: <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T) => Promise<T>,
): Policy {
  return { onSuccess: noEvent, onFailure: noEvent, execute } as unknown as Policy;
}

const context = { signal: new AbortController().signal };

/** No circuit breaker: a member that failed is tried again on the next call. */
const PASS_THROUGH = policy(async (fn) => fn(context));

/**
 * Instead of etcd3's three retries: a call that could not reach a member (UNAVAILABLE: refused, reset)
 * moves on to the next member at once, `attempts` members in all, all within the call's one
 * deadline. Nothing else is retried, and nothing waits between attempts.
 */
function failover(attempts: number): Policy {
  return policy(async (fn) => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await fn(context);
      } catch (error) {
        if (attempt >= attempts || !(error instanceof GRPCUnavailableError)) throw error;
      }
    }
  });
}

/** Watch streams reconnect after 50 ms, doubling up to 1 s (etcd3's default grows to 30 s). */
function watchBackoff(ms = 50): Backoff {
  return { duration: ms, next: () => watchBackoff(Math.min(ms * 2, 1_000)) };
}

type ClientOptions = Omit<IOptions, 'hosts' | 'faultHandling' | 'defaultCallOptions'>;

/** A call was not sent to a member because its last call ran out of time (see {@link StallGuard}). */
class MemberStalled extends Error {
  override readonly name = 'MemberStalled';
}

/** How often a stalled member is probed until it answers again. */
const PROBE_EVERY_MS = 250;

/**
 * Keeps calls away from a member whose last call ran out of time (paused, partitioned, overloaded):
 * its calls go to the other members until a status probe of its own answers again, so one sick
 * member of three costs one timed-out call, not a share of every call. When every member is
 * stalled (no quorum anywhere) calls go through as usual and fail at their deadline.
 * @internal
 */
export class StallGuard {
  private readonly stalled = new Map<string, NodeJS.Timeout | undefined>();
  private readonly probes = new Map<string, Etcd3>();
  private closed = false;

  constructor(
    private readonly hosts: string[],
    private readonly clientOptions: ClientOptions,
    private readonly timeout: number,
  ) {}

  /** The per-member policy of the lock client. */
  policy(host: string): Policy {
    return policy(async (fn) => {
      if (this.stalled.has(host) && this.stalled.size < this.hosts.length) {
        throw new MemberStalled(host);
      }
      try {
        return await fn(context);
      } catch (error) {
        if (error instanceof GRPCDeadlineExceededError) this.stall(host);
        throw error;
      }
    });
  }

  close(): void {
    this.closed = true;
    for (const timer of this.stalled.values()) clearTimeout(timer);
    this.stalled.clear();
    for (const probe of this.probes.values()) probe.close();
    this.probes.clear();
  }

  private stall(host: string): void {
    if (this.closed || this.stalled.has(host)) return;
    this.stalled.set(host, undefined);
    this.probe(host);
  }

  private probe(host: string): void {
    const timer = setTimeout(() => {
      let client = this.probes.get(host);
      if (!client) {
        client = plainClient([host], this.clientOptions, this.timeout);
        this.probes.set(host, client);
      }
      client.maintenance.status({ deadline: Date.now() + this.timeout }).then(
        () => this.stalled.delete(host),
        () => {
          if (!this.closed && this.stalled.has(host)) this.probe(host);
        },
      );
    }, PROBE_EVERY_MS);
    timer.unref();
    this.stalled.set(host, timer);
  }
}

/** A client with no fault handling at all (one host: nothing to fail over to). */
function plainClient(hosts: string[], clientOptions: ClientOptions, timeout: number): Etcd3 {
  return new Etcd3({
    dialTimeout: timeout,
    ...clientOptions,
    hosts,
    faultHandling: { host: () => PASS_THROUGH, global: PASS_THROUGH, watchBackoff: watchBackoff() },
  });
}

/**
 * An `Etcd3` client without etcd3's retries and circuit breakers: a call that cannot reach a member
 * moves on to the next one at once, within its own deadline; watches reconnect within a second.
 * With a `guard`, members whose last call timed out are skipped until they answer again.
 * @internal
 */
export function failFastClient(
  hosts: string[],
  clientOptions: ClientOptions,
  timeout: number,
  guard?: StallGuard,
): Etcd3 {
  if (!guard) return plainClient(hosts, clientOptions, timeout);
  return new Etcd3({
    dialTimeout: timeout,
    ...clientOptions,
    hosts,
    faultHandling: {
      host: (host) => guard.policy(host),
      global: failover(hosts.length),
      watchBackoff: watchBackoff(),
    },
  });
}

/**
 * The backend's link to etcd: the client (ours, created fail-fast, or the user's), a deadline on
 * every call, and the identity of the cluster. Revisions are fencing tokens only within one cluster
 * history: a header from another cluster ID, or a write revision lower than one already seen (data
 * wiped or restored from a snapshot), fails every later call closed.
 * @internal
 */
export class EtcdConnection {
  readonly client: Etcd3;
  readonly owned: boolean;
  readonly timeout: number;
  private clusterId: string | undefined;
  private highest = 0;
  private broken: string | undefined;
  private readonly guard: StallGuard | undefined;

  constructor(options: ResolvedEtcdOptions) {
    this.timeout = options.commandTimeout;
    this.owned = options.client === undefined;
    if (options.client) this.client = options.client;
    else {
      this.guard = new StallGuard(options.hosts, options.clientOptions, options.commandTimeout);
      this.client = failFastClient(
        options.hosts,
        options.clientOptions,
        options.commandTimeout,
        this.guard,
      );
    }
  }

  /** The reason the backend fails closed, once the cluster changed under it. */
  get failure(): string | undefined {
    return this.broken;
  }

  /**
   * Runs one etcd call with a deadline of `timeout` ms (passed to gRPC, and enforced here too, since
   * a user client's own retry policy may wait between attempts), then checks its response header:
   * the cluster ID must be the one seen first, and for `ordered` answers (transactions and
   * linearizable reads: served at a revision at least as new as any committed before they were
   * sent) the revision must not be below the highest one seen before the call was sent. Keepalives
   * and lease TTL reads are not ordered: a member forwards them to the leader but stamps the reply
   * with its own applied revision, which is behind while it catches up (after a pause, say).
   * @throws EtcdFailure when it failed or did not answer in time
   * @throws EtcdClusterChanged once the cluster changed under us
   */
  async call<T extends { header?: IResponseHeader }>(
    run: (options: CallOptions) => Promise<T>,
    ordered = true,
  ): Promise<T> {
    if (this.broken) throw new EtcdClusterChanged(this.broken);
    const floor = this.highest;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new EtcdFailure(Messages.etcdNoAnswer(this.timeout))),
        this.timeout,
      );
    });
    const call = run({ deadline: Date.now() + this.timeout });
    let reply: T;
    try {
      reply = await Promise.race([call, timeout]);
    } catch (error) {
      if (error instanceof EtcdFailure) call.catch(() => undefined);
      throw toFailure(error);
    } finally {
      clearTimeout(timer);
    }
    this.observe(reply.header, ordered ? floor : undefined);
    return reply;
  }

  /** @throws EtcdClusterChanged when `header` is from another cluster, or older than `floor` */
  private observe(header: IResponseHeader | undefined, floor: number | undefined): void {
    if (!header) return;
    if (this.clusterId === undefined) this.clusterId = header.cluster_id;
    else if (header.cluster_id !== this.clusterId) {
      this.broken ??= Messages.etcdClusterChanged(this.clusterId, header.cluster_id);
    }
    if (floor !== undefined && !this.broken) {
      const revision = Number(header.revision);
      if (revision < floor) this.broken = Messages.etcdRevisionBackwards(floor, revision);
      else if (revision > this.highest) this.highest = revision;
    }
    if (this.broken) throw new EtcdClusterChanged(this.broken);
  }

  /** Closes the client if it is ours. */
  close(): void {
    this.guard?.close();
    if (this.owned) this.client.close();
  }
}

/** An error as the backend reports it: the message only (gRPC errors carry request details). */
function toFailure(error: unknown): Error {
  if (error instanceof EtcdFailure || error instanceof EtcdClusterChanged) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new EtcdFailure(message);
}
