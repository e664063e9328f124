import { Etcd3 } from 'etcd3';
import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import type { EtcdBackendOptions } from './etcd-backend-options.interface';
import { etcdBackend } from './etcd-backend.factory';
import { resolveEtcdOptions } from './resolve-etcd-options';

const host = 'http://127.0.0.1:1';

function fieldOf(options: unknown): string | undefined {
  try {
    resolveEtcdOptions(options as EtcdBackendOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(DistributedLockConfigError);
    return (error as DistributedLockConfigError).field;
  }
  return undefined;
}

describe('resolveEtcdOptions', () => {
  // Created, never connected (etcd3 dials lazily), closed after the suite.
  const client = new Etcd3({ hosts: host });
  afterAll(() => client.close());

  it('fills in the documented defaults', () => {
    expect(resolveEtcdOptions({ hosts: host })).toEqual({
      hosts: [host],
      client: undefined,
      clientOptions: {},
      commandTimeout: 1000,
      keyPrefix: 'lock:',
    });
    expect(resolveEtcdOptions({ client, keyPrefix: '', commandTimeout: 250 })).toMatchObject({
      hosts: [],
      client,
      commandTimeout: 250,
      keyPrefix: '',
    });
  });

  it.each<[string, unknown]>([
    ['options', null],
    ['hosts', {}],
    ['client', { hosts: [host], client }],
    ['hosts', { hosts: [] }],
    ['hosts', { hosts: '127.0.0.1:2379' }],
    ['hosts[1]', { hosts: [host, 'etcd:2379'] }],
    ['hosts[0]', { hosts: [42] }],
    ['client', { client: {} }],
    ['clientOptions', { client, clientOptions: { dialTimeout: 5 } }],
    ['commandTimeout', { hosts: host, commandTimeout: 0 }],
    ['commandTimeout', { hosts: host, commandTimeout: 1.5 }],
    ['keyPrefix', { hosts: host, keyPrefix: 7 }],
    ['keyPrefix', { hosts: host, keyPrefix: 'x'.repeat(1025) }],
    ['ttl', { hosts: host, ttl: 5 }],
  ])('names %s in the DistributedLockConfigError for %p', (field, options) => {
    expect(fieldOf(options)).toBe(field);
  });

  it('validates in the factory, before any I/O', () => {
    expect(() => etcdBackend({ hosts: [] })).toThrow(DistributedLockConfigError);
    expect(etcdBackend({ client }).name).toBe('etcd');
  });
});
