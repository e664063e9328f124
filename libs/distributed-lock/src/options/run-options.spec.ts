import { DistributedLockConfigError } from '../errors/distributed-lock-config.error';
import { resolveRun } from './run-options';
import { configError } from './validators';

const moduleOptions = { ttl: 30_000, extendThreshold: undefined, minTtl: 4 };

describe('resolveRun', () => {
  it('fills in module defaults', () => {
    expect(resolveRun({}, moduleOptions, configError)).toEqual({
      ttl: 30_000,
      autoExtend: true,
      extendThreshold: 15_000,
      lockAtLeastFor: 0,
      lockAtMostFor: undefined,
    });
  });

  it('caps the TTL at lockAtMostFor and skips the extension window check then', () => {
    expect(resolveRun({ lockAtMostFor: 100 }, moduleOptions, configError).ttl).toBe(100);
  });

  it('refuses a TTL too short to auto-extend, naming the field and the rule', () => {
    expect(() => resolveRun({ ttl: 150 }, moduleOptions, configError)).toThrow(
      /ttl: 150 ms is too short to auto-extend/,
    );
    expect(resolveRun({ ttl: 150, autoExtend: false }, moduleOptions, configError).ttl).toBe(150);
  });

  it('refuses a TTL that could never be granted, naming the smallest usable one', () => {
    expect(() => resolveRun({ ttl: 3, autoExtend: false }, moduleOptions, configError)).toThrow(
      'ttl: 3 ms can never be granted: clock drift and the minimum validity take all of it; use at least 4 ms',
    );
    expect(resolveRun({ ttl: 4, autoExtend: false }, moduleOptions, configError).ttl).toBe(4);
  });

  it('refuses lockAtLeastFor above lockAtMostFor', () => {
    expect(() =>
      resolveRun({ lockAtLeastFor: 5, lockAtMostFor: 4 }, moduleOptions, configError),
    ).toThrow(DistributedLockConfigError);
  });

  it.each([
    [{ ttl: 0 }, 'ttl'],
    [{ ttl: 1.5 }, 'ttl'],
    [{ autoExtend: 'yes' }, 'autoExtend'],
    [{ lockAtLeastFor: -1 }, 'lockAtLeastFor'],
    [{ lockAtMostFor: 0 }, 'lockAtMostFor'],
    [{ ttl: 3, autoExtend: false }, 'ttl'],
    [{ lockAtMostFor: 3 }, 'lockAtMostFor'],
  ])('refuses %j naming %s', (options, field) => {
    expect(() => resolveRun(options as object, moduleOptions, configError)).toThrow(
      expect.objectContaining({ field }) as Error,
    );
  });
});
