import {
  CompareResult,
  CompareTarget,
  type ICompare,
  type ILeaseKeepAliveResponse,
  type IRequestOp,
  type ITxnRequest,
  type ITxnResponse,
} from 'etcd3';
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
import { holderOf, newLockValue, sinceOf } from '../backend/lock-value';
import { extended, granted, leaseOf } from '../backend/validity';
import { Messages } from '../distributed-lock.messages';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockLostError } from '../errors/lock-lost.error';
import { LockUnavailableError, type LockVotes } from '../errors/lock-unavailable.error';
import { EtcdConnection, type CallOptions } from './etcd-connection';
import { EtcdHealth } from './etcd-health';
import { EtcdReleaseWaiters } from './etcd-release-waiters';
import type { ResolvedEtcdOptions } from './resolve-etcd-options';
import { limitOf, permitKeys } from '../backend/permits';
import { monotonicNow } from '../utils/clock';

/** A lease a lock's keys may be under. @internal */
interface HeldLease {
  /** The lease ID (an int64: kept as a string). */
  readonly id: string;
  /** Its TTL as etcd granted it, in whole seconds. */
  readonly seconds: number;
}

/** A lock as the etcd backend holds it. @internal */
interface EtcdLock extends BackendLock {
  /** The random lock value stored in every key (never logged). */
  readonly value: string;
  /**
   * The leases the keys may be under (all keys are under one of them), oldest first: normally just
   * one. An extension to a new TTL whose answer was lost adds the new lease, since the move may or
   * may not have been applied: neither lease is revoked while the holder lives, and the next extend
   * or release matches either. The one array is shared by every copy of the lock and updated in
   * place, so the copy a holder keeps after a failed extension knows what that extension left.
   */
  readonly leases: HeldLease[];
  /** The etcd keys (`keyPrefix` + key). */
  readonly etcdKeys: string[];
}

const FAILED: LockVotes = { total: 1, quorum: 1, granted: 0, held: 0, failed: 1 };

const buf = (s: string) => Buffer.from(s);
const is = (key: string, target: CompareTarget, extra: Partial<ICompare>): ICompare => ({
  key: buf(key),
  target,
  result: CompareResult.Equal,
  ...extra,
});
const absent = (key: string) => is(key, CompareTarget.Create, { create_revision: 0 });
/** `key` holds this lock under `lease`: our value, the lease, and the create revision we were granted. */
const ours = (key: string, lock: EtcdLock, lease: string): ICompare[] => [
  is(key, CompareTarget.Value, { value: buf(lock.value) }),
  is(key, CompareTarget.Lease, { lease }),
  is(key, CompareTarget.Create, { create_revision: String(lock.fencingToken) }),
];
/** The end of the range of every key starting with `prefix` (prefix + 1 on its last byte below 0xff). */
function rangeEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i -= 1) {
    if (end[i] < 0xff) {
      end[i] += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
const read = (key: string): IRequestOp => ({ request_range: { key: buf(key) } });

/**
 * The depth of the nested transaction that succeeded: which permit a `putFirstAbsent` transaction
 * put, or which of a lock's leases a {@link EtcdLockBackend} `whileOurs` transaction found the keys under.
 */
function succeededAt(txn: ITxnResponse): number | undefined {
  let reply: ITxnResponse | undefined = txn;
  for (let depth = 0; reply; depth += 1) {
    if (reply.succeeded) return depth;
    reply = reply.responses?.[0]?.response_txn;
  }
  return undefined;
}

/**
 * Locks on etcd (docs/ETCD.md): one lease per lock, every key put under it in one transaction that
 * checks each key is absent, and the transaction's revision as the fencing token (strictly increasing
 * across holders, leader changes and restarts of the cluster on its data). The holder's deadline is
 * timed on the monotonic clock from when the lease grant was sent and never outlives the lease etcd
 * granted (whole seconds, at least the server's minimum). Extending renews the lease once and checks
 * in a transaction that every key still holds our value under our lease (a keepalive alone does not
 * prove that on etcd < 3.4.38). Waiters watch the keys' delete from the failed attempt's revision.
 * @internal
 */
export class EtcdLockBackend implements LockBackend {
  readonly name = 'etcd';
  /** @see LockBackend.limits */
  readonly limits = true;
  /** This replica's identity, stored after the secret in every lock value (from `connect`). */
  private identity = '';
  private readonly conn: EtcdConnection;
  private readonly waiters: EtcdReleaseWaiters;
  private readonly probe: EtcdHealth;
  private readonly keyPrefix: string;

  constructor(options: ResolvedEtcdOptions) {
    this.conn = new EtcdConnection(options);
    this.keyPrefix = options.keyPrefix;
    this.waiters = new EtcdReleaseWaiters(this.conn.client);
    this.probe = new EtcdHealth(this.conn, options);
  }

  /** Learns the cluster ID (when the cluster answers). Never throws. */
  async connect(context?: BackendContext): Promise<void> {
    this.identity = context?.identity ?? '';
    await this.conn
      .call((o) => this.conn.client.maintenance.status(o), false)
      .catch(() => undefined);
  }

  /** Wakes waiters, closes the probe clients and, if it is ours, the client. */
  async close(): Promise<void> {
    this.waiters.close();
    this.probe.close();
    this.conn.close();
    return Promise.resolve();
  }

  /** `instances` = members, `up` = members answering a status call, `quorum` = their majority. */
  health(): Promise<BackendHealth> {
    return this.probe.check();
  }

  /**
   * Takes every key for `ttl` ms (rounded up to whole seconds for the lease), all or none.
   * @throws LockBusyError when another owner holds one of them
   * @throws LockUnavailableError when etcd did not answer in time, or too little validity was left
   */
  async acquire(
    keys: string[],
    ttl: number,
    options?: BackendAcquireOptions,
  ): Promise<BackendLock> {
    const limit = limitOf(options);
    const etcdKeys = this.keysOf(limit > 1 ? permitKeys(keys[0], limit) : keys);
    const value = newLockValue(this.identity, options?.since);
    const start = monotonicNow();
    const { lease, seconds } = await this.grant(keys, ttl);
    let created: number | null;
    let held = etcdKeys;
    let permit: number | undefined;
    let revision: number;
    if (limit > 1) {
      const txn = await this.putFirstAbsent(keys, etcdKeys, value, lease);
      revision = Number(txn.header.revision);
      permit = succeededAt(txn);
      created = permit === undefined ? null : revision;
      if (permit !== undefined) held = [etcdKeys[permit]];
    } else {
      const txn = await this.putIfAbsent(keys, etcdKeys, value, lease);
      revision = Number(txn.header.revision);
      created = this.createdBy(txn, etcdKeys, value, lease);
    }
    if (created === null) {
      this.revoke(lease);
      this.waiters.remember(etcdKeys, revision);
      throw new LockBusyError(keys, Messages.busy(keys));
    }
    const lock: EtcdLock = {
      ...leaseOf(start, Math.min(ttl, seconds * 1000)),
      fencingToken: created,
      value,
      leases: [{ id: lease, seconds }],
      etcdKeys: held,
      ...(permit === undefined ? {} : { permit }),
    };
    return granted(lock, keys, ttl, (l) => this.discard(l));
  }

  /**
   * Takes `key` for `ttl` ms under a lease that is never revoked: it expires on its own.
   * @returns false when another owner has it
   * @throws LockUnavailableError when etcd did not answer in time
   */
  async claim(key: string, ttl: number): Promise<boolean> {
    const etcdKeys = this.keysOf([key]);
    const value = newLockValue(this.identity);
    const { lease } = await this.grant([key], ttl);
    const txn = await this.putIfAbsent([key], etcdKeys, value, lease);
    if (this.createdBy(txn, etcdKeys, value, lease) !== null) return true;
    this.revoke(lease);
    return false;
  }

  /**
   * Keeps the lock for `ttl` ms from now if every key still holds it: one keepalive of its lease and
   * a linearizable check of the keys, or, for a TTL of another number of seconds (or while an earlier
   * move's outcome is unknown), a new lease that the keys move to in one checked transaction.
   * @throws LockLostError when it is not ours any more, or the extension came back too late
   * @throws LockUnavailableError when etcd did not answer in time
   */
  async extend(held: BackendLock, keys: string[], ttl: number): Promise<BackendLock> {
    const lock = held as EtcdLock;
    const start = monotonicNow();
    if (start >= lock.deadline) {
      throw new LockLostError(keys, Messages.lost(keys, 'expired before it could be extended'));
    }
    const [only, ...others] = lock.leases;
    const seconds =
      others.length === 0 && Math.ceil(ttl / 1000) === only.seconds
        ? await this.renew(lock, only, keys)
        : await this.move(lock, keys, ttl);
    const next: EtcdLock = { ...lock, ...leaseOf(start, Math.min(ttl, seconds * 1000)) };
    return extended(next, keys, ttl, (l) => this.discard(l));
  }

  /**
   * Deletes the keys where they still hold this lock (under any of its leases), then revokes its
   * leases.
   * @throws LockLostError when some key no longer held this lock (expired, deleted or taken)
   * @throws LockUnavailableError when etcd did not answer in time
   */
  async release(held: BackendLock, keys: string[]): Promise<void> {
    const lock = held as EtcdLock;
    const txn = await this.run(keys, (o) =>
      this.conn.client.kv.txn(
        this.whileOurs(
          lock,
          lock.etcdKeys.map((k) => ({ request_delete_range: { key: buf(k) } })),
        ),
        o,
      ),
    );
    this.discard(lock);
    if (succeededAt(txn) === undefined) {
      throw new LockLostError(keys, Messages.lost(keys, 'no longer held by this owner'));
    }
  }

  /**
   * Frees the lock without waiting or reporting: revoking its leases deletes exactly the keys still
   * attached to them, which are ours (a key taken by another owner is under that owner's lease).
   * Called only once the holder is done with the lock (released, lost, or handed back unused).
   */
  discard(held: BackendLock, _keys?: string[]): void {
    for (const lease of (held as EtcdLock).leases) this.revoke(lease.id);
  }

  /** Resolves on the delete of one of `keys` (watched from the failed attempt), or after `timeoutMs`. */
  waitForRelease(keys: string[], timeoutMs: number): Promise<void> {
    return this.waiters.wait(
      keys.map((k) => this.keyPrefix + k),
      timeoutMs,
    );
  }

  /** True when the key exists (a linearizable read). @throws LockUnavailableError when etcd did not answer */
  async isLocked(key: string): Promise<boolean> {
    const [etcdKey] = this.keysOf([key]);
    const reply = await this.run([key], (o) =>
      this.conn.client.kv.range({ key: buf(etcdKey), count_only: true }, o),
    );
    return Number(reply.count) > 0;
  }

  /**
   * The keys held now under `query.prefix` (one linearizable range over the prefix, in key order, at
   * most `query.limit`), each with its lease's remaining TTL (one call per distinct lease). The
   * fencing token is the key's create revision, as `acquire` issued it.
   * @throws LockUnavailableError when etcd did not answer in time
   */
  async list(query: BackendListQuery): Promise<BackendHeldKey[]> {
    const from = buf(this.keyPrefix + query.prefix);
    const reply = await this.run([query.prefix], (o) =>
      this.conn.client.kv.range(
        {
          key: from.length > 0 ? from : Buffer.from([0]),
          range_end: rangeEnd(from),
          limit: query.limit,
        },
        o,
      ),
    );
    const kvs = reply.kvs ?? [];
    const leases = [...new Set(kvs.map((kv) => kv.lease).filter((l) => l && l !== '0'))];
    const now = Date.now();
    const left = new Map<string, number>();
    await Promise.all(
      leases.map(async (lease) => {
        // Answered by the leader, stamped with the asking member's revision: not ordered.
        const ttl = await this.run(
          [query.prefix],
          (o) => this.conn.client.leaseClient.leaseTimeToLive({ ID: lease }, o),
          false,
        );
        left.set(lease, Number(ttl.TTL));
      }),
    );
    const found: BackendHeldKey[] = [];
    for (const kv of kvs) {
      const seconds = left.get(kv.lease);
      // A key under no lease, or a lease that just ran out, is not a lock held now.
      if (seconds === undefined || !(seconds >= 0)) continue;
      found.push({
        key: kv.key.toString().slice(this.keyPrefix.length),
        identity: holderOf(kv.value.toString()),
        fencingToken: Number(kv.create_revision),
        expiresAt: now + seconds * 1000,
      });
    }
    return found;
  }

  /**
   * Who holds `key` now: one linearizable read of the key, then its lease's remaining TTL. The
   * fencing token is the key's create revision, as `acquire` issued it.
   * @throws LockUnavailableError when etcd did not answer in time
   */
  async inspect(key: string): Promise<BackendHolder | null> {
    const [etcdKey] = this.keysOf([key]);
    const reply = await this.run([key], (o) => this.conn.client.kv.range({ key: buf(etcdKey) }, o));
    const kv = reply.kvs?.[0];
    if (kv === undefined || !kv.lease || kv.lease === '0') return null;
    const now = Date.now();
    const lease = await this.run([key], (o) =>
      this.conn.client.leaseClient.leaseTimeToLive({ ID: kv.lease }, o),
    );
    const seconds = Number(lease.TTL);
    if (!(seconds >= 0)) return null;
    const value = kv.value.toString();
    return {
      identity: holderOf(value),
      since: sinceOf(value),
      fencingToken: Number(kv.create_revision),
      expiresAt: now + seconds * 1000,
    };
  }

  /**
   * Deletes `key` whoever holds it. The delete is itself a new revision of the store, so every later
   * acquisition's token (its revision) is above the stale holder's; the stale holder's lease stays
   * until it extends (which then fails: the key no longer holds its value) or releases.
   * @returns true when the key existed
   * @throws LockUnavailableError when etcd did not answer in time
   */
  async forceRelease(key: string): Promise<boolean> {
    const [etcdKey] = this.keysOf([key]);
    const reply = await this.run([key], (o) =>
      this.conn.client.kv.deleteRange({ key: buf(etcdKey) }, o),
    );
    return Number(reply.deleted) > 0;
  }

  private keysOf(keys: string[]): string[] {
    return keys.map((k) => this.keyPrefix + k);
  }

  /** A lease of `ttl` rounded up to whole seconds; `seconds` is what etcd granted (its minimum may be higher). */
  private async grant(keys: string[], ttl: number): Promise<{ lease: string; seconds: number }> {
    const reply = await this.run(keys, (o) =>
      this.conn.client.leaseClient.leaseGrant({ TTL: Math.ceil(ttl / 1000), ID: 0 }, o),
    );
    const seconds = Number(reply.TTL);
    if (reply.error || !(seconds > 0)) {
      this.revoke(reply.ID);
      throw new LockUnavailableError(
        keys,
        Messages.etcdUnavailable(keys, reply.error || 'no lease granted'),
        FAILED,
      );
    }
    return { lease: reply.ID, seconds };
  }

  /**
   * One transaction: if every key is absent, put each with `value` under `lease`; otherwise read them
   * (to recognise our own write when this is a retry of a call whose reply was lost).
   */
  private async putIfAbsent(
    keys: string[],
    etcdKeys: string[],
    value: string,
    lease: string,
  ): Promise<ITxnResponse> {
    try {
      return await this.run(keys, (o) =>
        this.conn.client.kv.txn(
          {
            compare: etcdKeys.map(absent),
            success: etcdKeys.map((k) => ({
              request_put: { key: buf(k), value: buf(value), lease },
            })),
            failure: etcdKeys.map(read),
          },
          o,
        ),
      );
    } catch (error) {
      // It may have been applied (the reply was lost, or came too late): revoking the lease undoes it.
      this.revoke(lease);
      throw error;
    }
  }

  /**
   * One transaction for a limited key: put `value` under `lease` on the first absent permit key
   * (nested transactions: if permit 0 is absent put it, else if permit 1 is absent …). The revision
   * is the fencing token, as for a mutex. A lost reply that the connection retries may take a second
   * permit under the same lease: it goes with the lease at release (never another holder's key).
   */
  private async putFirstAbsent(
    keys: string[],
    etcdKeys: string[],
    value: string,
    lease: string,
  ): Promise<ITxnResponse> {
    let request: ITxnRequest | undefined;
    for (let i = etcdKeys.length - 1; i >= 0; i -= 1) {
      const k = etcdKeys[i];
      request = {
        compare: [absent(k)],
        success: [{ request_put: { key: buf(k), value: buf(value), lease } }],
        failure: request ? [{ request_txn: request }] : [],
      };
    }
    try {
      return await this.run(keys, (o) => this.conn.client.kv.txn(request!, o));
    } catch (error) {
      this.revoke(lease);
      throw error;
    }
  }

  /**
   * The fencing token when the transaction put the keys: its revision, or, when it found every key
   * already holding our value under our lease (our own earlier attempt of the same call), their
   * create revision. Null when another owner holds one of them.
   */
  private createdBy(
    txn: ITxnResponse,
    etcdKeys: string[],
    value: string,
    lease: string,
  ): number | null {
    if (txn.succeeded) return Number(txn.header.revision);
    const found = txn.responses.map((r) => r.response_range?.kvs?.[0]);
    const mine = found.every(
      (kv) => kv !== undefined && kv.lease === lease && kv.value.toString() === value,
    );
    return mine && found.length === etcdKeys.length ? Number(found[0].create_revision) : null;
  }

  /**
   * A transaction that runs `ops` if every key of `lock` still holds it under one of its leases
   * (value, lease and create revision compared; nested transactions, one level per lease, since a
   * compare cannot say "either"). {@link succeededAt} tells which lease matched.
   */
  private whileOurs(lock: EtcdLock, ops: IRequestOp[]): ITxnRequest {
    let request: ITxnRequest | undefined;
    for (let i = lock.leases.length - 1; i >= 0; i -= 1) {
      const lease = lock.leases[i].id;
      request = {
        compare: lock.etcdKeys.flatMap((k) => ours(k, lock, lease)),
        success: ops,
        failure: request ? [{ request_txn: request }] : [],
      };
    }
    return request!;
  }

  /**
   * Same TTL, one lease: one keepalive of the lease, then a transaction that checks every key still
   * holds our value under that lease with our create revision, and reads the keys. The read makes
   * etcd serve it linearizably (through the leader's read index): a check with no read in it is
   * "serializable" and a member catching up answers it from its stale state, where keys deleted
   * since still exist.
   * @returns the lease's TTL in seconds
   */
  private async renew(lock: EtcdLock, lease: HeldLease, keys: string[]): Promise<number> {
    // A member forwards the renewal to the leader but stamps the reply with its own (possibly
    // older) revision: only the cluster ID of a keepalive reply is checked.
    const alive = await this.run(keys, (o) => this.keepAliveOnce(lease.id, o), false);
    const seconds = Number(alive.TTL);
    if (!(seconds > 0)) {
      this.discard(lock);
      throw new LockLostError(keys, Messages.lost(keys, 'its etcd lease expired'));
    }
    const check = await this.run(keys, (o) =>
      this.conn.client.kv.txn(this.whileOurs(lock, lock.etcdKeys.map(read)), o),
    );
    if (succeededAt(check) === undefined) {
      this.discard(lock);
      throw new LockLostError(keys, Messages.lost(keys, 'no longer held by this owner'));
    }
    return Math.min(seconds, lease.seconds);
  }

  /**
   * Another TTL: a new lease, and one transaction that moves the keys to it if they are still ours
   * under one of the lock's leases. Once that is confirmed the old leases are revoked (nothing can
   * put our keys back under them). When the answer is lost the move may have been applied or not:
   * the new lease joins the lock's leases and none is revoked, so the keys stay with the holder
   * either way; the next extend or release matches whichever holds them. If the new lease can end
   * before the deadline the holder counts on (a move to a shorter TTL), the lock is lost at once.
   * @returns the new lease's TTL in seconds
   * @throws LockLostError when it is not ours any more, or a move to a shorter lease was not confirmed
   */
  private async move(lock: EtcdLock, keys: string[], ttl: number): Promise<number> {
    const sent = monotonicNow();
    const { lease, seconds } = await this.grant(keys, ttl);
    const puts = lock.etcdKeys.map((k) => ({
      request_put: { key: buf(k), value: buf(lock.value), lease },
    }));
    let txn: ITxnResponse;
    try {
      txn = await this.run(keys, (o) => this.conn.client.kv.txn(this.whileOurs(lock, puts), o));
    } catch (error) {
      lock.leases.push({ id: lease, seconds });
      // etcd starts the lease after we asked for it: it lasts at least this long on our clock.
      if (leaseOf(sent, seconds * 1000).deadline < lock.deadline) {
        throw new LockLostError(
          keys,
          Messages.lost(keys, 'its move to a shorter etcd lease was not confirmed'),
        );
      }
      throw error;
    }
    if (succeededAt(txn) === undefined) {
      this.revoke(lease);
      this.discard(lock);
      throw new LockLostError(keys, Messages.lost(keys, 'no longer held by this owner'));
    }
    const old = lock.leases.splice(0, lock.leases.length, { id: lease, seconds });
    for (const l of old) this.revoke(l.id);
    return seconds;
  }

  /** One keepalive on its own stream (etcd has no unary keepalive), ended after the answer. */
  private async keepAliveOnce(
    lease: string,
    options: CallOptions,
  ): Promise<ILeaseKeepAliveResponse> {
    const stream = await this.conn.client.leaseClient.leaseKeepAlive(options);
    return new Promise<ILeaseKeepAliveResponse>((resolve, reject) => {
      let settled = false;
      const settle = (error: Error | undefined, reply?: ILeaseKeepAliveResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        stream.end();
        if (error) reject(error);
        else resolve(reply!);
      };
      // The call's deadline ends the stream; this only guards a stream that never reports it.
      const timer = setTimeout(
        () => settle(new Error(Messages.etcdNoAnswer(this.conn.timeout))),
        Math.max(0, options.deadline - Date.now()) + 100,
      );
      stream.on('data', (reply: ILeaseKeepAliveResponse) => settle(undefined, reply));
      stream.on('error', (error: Error) => settle(error));
      stream.write({ ID: lease });
    });
  }

  /** Revokes `lease` in the background (its keys go with it); a failure leaves it to its TTL. */
  private revoke(lease: string): void {
    if (!lease || lease === '0') return;
    this.conn
      .call((o) => this.conn.client.leaseClient.leaseRevoke({ ID: lease }, o), false)
      .catch(() => undefined);
  }

  /**
   * Runs one etcd call; its failure is a `LockUnavailableError` for `keys` (fail closed). `ordered`:
   * see {@link EtcdConnection.call}.
   */
  private async run<T extends { header?: ITxnResponse['header'] }>(
    keys: string[],
    call: (options: CallOptions) => Promise<T>,
    ordered = true,
  ): Promise<T> {
    try {
      return await this.conn.call(call, ordered);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new LockUnavailableError(
        keys,
        Messages.etcdUnavailable(keys, reason),
        FAILED,
        error instanceof Error ? error : undefined,
      );
    }
  }
}
