import type { LockBackend } from '../backend/lock-backend.interface';
import type { EtcdBackendOptions } from './etcd-backend-options.interface';
import { EtcdLockBackend } from './etcd.backend';
import { resolveEtcdOptions } from './resolve-etcd-options';

/**
 * An etcd lock backend for `DistributedLockModule.forRoot({ backend })`: one lease per lock, all keys
 * taken in one transaction, the transaction's revision as the fencing token (kept by the cluster
 * across leader changes and restarts), waiters woken by a watch on the keys' delete. Fails closed
 * and fast when the cluster has no quorum. Same `LockService` and `@Exclusive()` behaviour and
 * errors as on Redis; TTLs are rounded up to whole seconds for the lease (docs/ETCD.md). Needs the
 * `etcd3` package (an optional peer). Options are validated here: an invalid one throws
 * `DistributedLockConfigError` naming it.
 *
 * @example
 * ```ts
 * import { etcdBackend } from 'nestjs-distributed-lock/etcd';
 *
 * DistributedLockModule.forRoot({
 *   backend: etcdBackend({ hosts: ['http://etcd-1:2379', 'http://etcd-2:2379', 'http://etcd-3:2379'] }),
 * });
 * // or with an Etcd3 client you own (never closed by the module):
 * DistributedLockModule.forRoot({ backend: etcdBackend({ client }) });
 * ```
 */
export function etcdBackend(options: EtcdBackendOptions): LockBackend {
  return new EtcdLockBackend(resolveEtcdOptions(options));
}
