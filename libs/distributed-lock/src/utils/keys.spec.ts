import { MAX_KEY_LENGTH } from '../distributed-lock.constants';
import { InvalidLockArgumentError } from '../errors/invalid-lock-argument.error';
import { normalizeKeys } from './keys';

describe('normalizeKeys', () => {
  it('accepts one key or a list, and drops duplicates in order', () => {
    expect(normalizeKeys('a')).toEqual(['a']);
    expect(normalizeKeys(['b', 'a', 'b'])).toEqual(['b', 'a']);
    expect(normalizeKeys('k'.repeat(MAX_KEY_LENGTH))).toHaveLength(1);
  });

  it.each([
    [[], 'key', /empty list/],
    ['', 'key', /non-empty string, got ""/],
    [undefined, 'key', /got undefined/],
    [null, 'key', /got null/],
    [['a', 3], 'key[1]', /got number/],
    ['k'.repeat(MAX_KEY_LENGTH + 1), 'key', /at most 1024 characters/],
  ])('rejects %j', (input, field, message) => {
    let error: unknown;
    try {
      normalizeKeys(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidLockArgumentError);
    expect((error as InvalidLockArgumentError).field).toBe(field);
    expect((error as Error).message).toMatch(message);
  });
});
