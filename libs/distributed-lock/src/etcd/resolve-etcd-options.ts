import type { Etcd3, IOptions } from 'etcd3';
import { checkInteger, configError } from '../options/validators';
import type { EtcdBackendOptions } from './etcd-backend-options.interface';

/** `etcdBackend()` options after validation, with defaults applied. @internal */
export interface ResolvedEtcdOptions {
  /** Member URLs of a client we create and own; empty with a user `client`. */
  hosts: string[];
  client?: Etcd3;
  clientOptions: Omit<IOptions, 'hosts' | 'faultHandling' | 'defaultCallOptions'>;
  commandTimeout: number;
  keyPrefix: string;
}

/** Documented defaults. @internal */
export const ETCD_DEFAULTS = {
  commandTimeout: 1_000,
  keyPrefix: 'lock:',
} as const;

const KNOWN = new Set<string>(['hosts', 'client', 'clientOptions', 'commandTimeout', 'keyPrefix']);

/** etcd refuses requests above 1.5 MiB by default; a key near that is a mistake. */
const MAX_PREFIX_BYTES = 1_024;

/**
 * Validates `etcdBackend()` options; throws `DistributedLockConfigError` naming the first invalid
 * one. No I/O.
 * @internal
 */
export function resolveEtcdOptions(raw: EtcdBackendOptions): ResolvedEtcdOptions {
  if (raw === null || typeof raw !== 'object') {
    throw configError('options', 'etcdBackend() needs an options object');
  }
  for (const name of Object.keys(raw)) {
    if (!KNOWN.has(name)) {
      throw configError(name, `is not an etcdBackend() option; allowed: ${[...KNOWN].join(', ')}`);
    }
  }
  const { client } = raw;
  if ((raw.hosts === undefined) === (client === undefined)) {
    throw configError(
      raw.hosts === undefined ? 'hosts' : 'client',
      raw.hosts === undefined
        ? 'one of `hosts` or `client` is required'
        : '`hosts` and `client` are mutually exclusive; pass one',
    );
  }
  let hosts: string[] = [];
  if (raw.hosts !== undefined) {
    const list: unknown[] = Array.isArray(raw.hosts) ? raw.hosts : [raw.hosts];
    if (list.length === 0) throw configError('hosts', 'must not be an empty list');
    list.forEach((host, i) => {
      if (typeof host !== 'string' || !/^https?:\/\/[^/\s]+\/?$/.test(host)) {
        throw configError(
          Array.isArray(raw.hosts) ? `hosts[${i}]` : 'hosts',
          `must be an http:// or https:// URL of an etcd member (e.g. "http://127.0.0.1:2379"), got ${JSON.stringify(host)}`,
        );
      }
    });
    hosts = list as string[];
  } else {
    const c = client as unknown as Record<string, unknown> | null;
    if (
      c === null ||
      typeof c !== 'object' ||
      typeof c.watch !== 'function' ||
      typeof c.close !== 'function' ||
      typeof c.kv !== 'object' ||
      typeof c.leaseClient !== 'object'
    ) {
      throw configError('client', 'must be an Etcd3 client (from the etcd3 package)');
    }
    if (raw.clientOptions !== undefined) {
      throw configError(
        'clientOptions',
        'applies only to the client created from `hosts`; configure your own client instead',
      );
    }
  }
  const clientOptions = raw.clientOptions ?? {};
  if (clientOptions === null || typeof clientOptions !== 'object') {
    throw configError('clientOptions', 'must be an object of etcd3 client options');
  }
  const commandTimeout =
    raw.commandTimeout === undefined
      ? ETCD_DEFAULTS.commandTimeout
      : checkInteger('commandTimeout', raw.commandTimeout, 10, 600_000);
  const keyPrefix = raw.keyPrefix ?? ETCD_DEFAULTS.keyPrefix;
  if (typeof keyPrefix !== 'string') throw configError('keyPrefix', 'must be a string');
  if (Buffer.byteLength(keyPrefix) > MAX_PREFIX_BYTES) {
    throw configError('keyPrefix', `must be at most ${MAX_PREFIX_BYTES} bytes long`);
  }
  return { hosts, client, clientOptions, commandTimeout, keyPrefix };
}
