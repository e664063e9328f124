import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import { checkExtendWindow, resolveRetry, validateModuleOptions } from './validate-options';
import { DEFAULTS } from './resolved-options';

describe('validateModuleOptions', () => {
  it('fills in the documented defaults', () => {
    const o = validateModuleOptions({ connections: ['redis://a'], logger: false });
    expect(o).toMatchObject({
      keyPrefix: 'lock:',
      ttl: 30_000,
      retry: { count: 5, delay: 50, maxDelay: 1_000, jitter: 0.25 },
      driftFactor: 0.01,
      shutdownTimeout: 10_000,
      commandTimeout: 500,
      logger: null,
    });
    expect(o.extendThreshold).toBeUndefined();
  });

  it('keeps valid overrides', () => {
    const o = validateModuleOptions({
      connections: [{ host: 'a' }],
      keyPrefix: '',
      ttl: 1_000,
      extendThreshold: 900,
      retry: { count: 0 },
      driftFactor: 0,
      shutdownTimeout: 0,
    });
    expect(o).toMatchObject({
      keyPrefix: '',
      ttl: 1_000,
      extendThreshold: 900,
      driftFactor: 0,
      shutdownTimeout: 0,
    });
    expect(o.retry).toEqual({ ...DEFAULTS.retry, count: 0 });
  });

  it.each([
    [{}, 'connections'],
    [{ connections: [''] }, 'connections[0]'],
    [{ connections: [42] }, 'connections[0]'],
    [{ connections: ['redis://a'], keyPrefix: 5 }, 'keyPrefix'],
    [{ connections: ['redis://a'], ttl: Number.NaN }, 'ttl'],
    [{ connections: ['redis://a'], ttl: 1_000, extendThreshold: 901 }, 'ttl'],
    [{ connections: ['redis://a'], extendThreshold: 0 }, 'extendThreshold'],
    [{ connections: ['redis://a'], shutdownTimeout: -1 }, 'shutdownTimeout'],
    [{ connections: ['redis://a'], commandTimeout: 0 }, 'commandTimeout'],
    [{ connections: ['redis://a'], retry: 3 }, 'retry'],
    [{ connections: ['redis://a'], retry: { delay: 1.5 } }, 'retry.delay'],
  ])('rejects %j naming %s', (raw, field) => {
    let error: unknown;
    try {
      validateModuleOptions(raw as never);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DistributedLockConfigError);
    expect((error as DistributedLockConfigError).field).toBe(field);
    expect((error as Error).message.startsWith(`${field}: `)).toBe(true);
  });

  it('names the allowed range in the message', () => {
    expect(() => validateModuleOptions({ connections: ['redis://a'], ttl: -1 })).toThrow(
      'ttl: must be an integer from 1 to 2147483647 (ms), got -1',
    );
  });
});

describe('checkExtendWindow', () => {
  it('needs 100 ms between the threshold and the TTL', () => {
    expect(() => checkExtendWindow(199, undefined, 'ttl')).not.toThrow();
    expect(() => checkExtendWindow(198, undefined, 'ttl')).toThrow(/half the TTL by default/);
    expect(() => checkExtendWindow(1_000, 900, 'ttl')).not.toThrow();
    expect(() => checkExtendWindow(1_000, 901, 'ttl')).toThrow(
      /extendThreshold \(901 ms\) \+ 100 ms/,
    );
  });
});

describe('resolveRetry', () => {
  it('merges partial retry options over the base', () => {
    expect(resolveRetry('retry', { delay: 10 }, DEFAULTS.retry)).toEqual({
      ...DEFAULTS.retry,
      delay: 10,
    });
    expect(resolveRetry('retry', undefined, DEFAULTS.retry)).toBe(DEFAULTS.retry);
  });
});
