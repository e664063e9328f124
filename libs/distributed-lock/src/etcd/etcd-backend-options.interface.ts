import type { Etcd3, IOptions } from 'etcd3';

/**
 * Options of `etcdBackend()`. Give exactly one of `hosts` / `client`. All times are in milliseconds.
 *
 * @example
 * ```ts
 * DistributedLockModule.forRoot({
 *   backend: etcdBackend({ hosts: ['http://etcd-1:2379', 'http://etcd-2:2379', 'http://etcd-3:2379'] }),
 * });
 * ```
 */
export interface EtcdBackendOptions {
  /**
   * Client URLs of the cluster's members (`http://` or `https://`): the backend creates an `Etcd3`
   * client for them with the client's retries and circuit breakers switched off (a call that finds a
   * member down moves on to another member within its deadline), owns it and closes it on shutdown.
   * @example ['http://127.0.0.1:2379']
   */
  hosts?: string | string[];
  /**
   * An `Etcd3` client you own: used for every lock call, never closed by the backend. Its own fault
   * handling applies (by default three retries and a per-host circuit breaker): every call still
   * gives up after `commandTimeout`, but a breaker left open by an outage fails calls at once for its
   * `halfOpenAfter`. See docs/ETCD.md for fail-fast settings.
   */
  client?: Etcd3;
  /**
   * Other settings of the client created from `hosts` (TLS `credentials`, `auth`, `grpcOptions`,
   * `dialTimeout`). Not allowed with `client`.
   */
  clientOptions?: Omit<IOptions, 'hosts' | 'faultHandling' | 'defaultCallOptions'>;
  /**
   * How long one call to etcd may take before the operation fails with `LockUnavailableError`
   * (fail closed). An acquisition makes two calls (lease grant, transaction).
   * @default 1000
   */
  commandTimeout?: number;
  /**
   * Prefix of every lock key in etcd: a lock on `order:42` is the etcd key `lock:order:42`.
   * @default 'lock:' (the module's default `keyPrefix`; the module's own option applies to Redis only)
   */
  keyPrefix?: string;
}
