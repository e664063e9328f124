import { InvalidLockArgumentError } from '../errors/invalid-lock-argument.error';
import { checkSameSlot, fenceKeyFor, hashTag } from './redis-keys';

describe('hashTag (Redis Cluster rules)', () => {
  it.each([
    ['lock:x', undefined],
    ['lock:{user1}:x', 'user1'],
    ['{a}{b}', 'a'],
    ['lock:{}x', undefined],
    ['lock:{x', undefined],
    ['lock:}x{y}', 'y'],
    ['a{b{c}d}', 'b{c'],
  ])('%s → %s', (key, tag) => {
    expect(hashTag(key)).toBe(tag);
  });
});

describe('fenceKeyFor', () => {
  it('keeps the 0.1 layout outside a Cluster', () => {
    expect(fenceKeyFor('lock:x', false, 'key')).toBe('fence:lock:x');
    expect(fenceKeyFor('lock:{x', false, 'key')).toBe('fence:lock:{x');
  });

  it('puts the counter in the lock key slot on a Cluster', () => {
    expect(fenceKeyFor('lock:x', true, 'key')).toBe('fence:{lock:x}');
    expect(hashTag(fenceKeyFor('lock:x', true, 'key'))).toBe('lock:x');
    expect(fenceKeyFor('lock:{t}:x', true, 'key')).toBe('fence:lock:{t}:x');
    expect(hashTag(fenceKeyFor('lock:{t}:x', true, 'key'))).toBe('t');
  });

  it('refuses a Cluster key with braces but no usable tag, naming the field', () => {
    expect(() => fenceKeyFor('lock:{}x', true, 'key[1]')).toThrow(InvalidLockArgumentError);
    expect(() => fenceKeyFor('lock:a}b', true, 'key')).toThrow(/key: .*hash tag/);
  });
});

describe('checkSameSlot', () => {
  it('accepts one key, or keys sharing a tag', () => {
    expect(() => checkSameSlot(['lock:x'])).not.toThrow();
    expect(() => checkSameSlot(['lock:{o1}:a', 'lock:{o1}:b'])).not.toThrow();
  });

  it('refuses untagged or differently tagged key lists', () => {
    expect(() => checkSameSlot(['lock:a', 'lock:b'])).toThrow(/hash tag/);
    expect(() => checkSameSlot(['lock:{o1}:a', 'lock:{o2}:b'])).toThrow(InvalidLockArgumentError);
  });
});
