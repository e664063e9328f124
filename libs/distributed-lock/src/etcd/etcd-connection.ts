import { Etcd3, GRPCUnavailableError, type IOptions, type IResponseHeader } from 'etcd3';
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

/**
 * An `Etcd3` client without etcd3's retries and circuit breakers: a call that cannot reach a member
 * moves on to the next one at once, within its own deadline; watches reconnect within a second.
 * @internal
 */
export function failFastClient(
  hosts: string[],
  clientOptions: Omit<IOptions, 'hosts' | 'faultHandling' | 'defaultCallOptions'>,
  timeout: number,
): Etcd3 {
  return new Etcd3({
    dialTimeout: timeout,
    ...clientOptions,
    hosts,
    faultHandling: {
      host: () => PASS_THROUGH,
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

  constructor(options: ResolvedEtcdOptions) {
    this.timeout = options.commandTimeout;
    this.owned = options.client === undefined;
    this.client =
      options.client ??
      failFastClient(options.hosts, options.clientOptions, options.commandTimeout);
  }

  /** The reason the backend fails closed, once the cluster changed under it. */
  get failure(): string | undefined {
    return this.broken;
  }

  /**
   * Runs one etcd call with a deadline of `timeout` ms (passed to gRPC, and enforced here too, since
   * a user client's own retry policy may wait between attempts), then checks its response header:
   * the cluster ID must be the one seen first, and for `ordered` answers (transactions, linearizable
   * reads, keepalives: all served at the cluster's latest revision) the revision must not be below
   * the highest one seen before the call was sent.
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
    if (this.owned) this.client.close();
  }
}

/** An error as the backend reports it: the message only (gRPC errors carry request details). */
function toFailure(error: unknown): Error {
  if (error instanceof EtcdFailure || error instanceof EtcdClusterChanged) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new EtcdFailure(message);
}
