import { holderOf, newLockValue, sinceOf } from './lock-value';

describe('lock values', () => {
  it('carry the identity and, for a leadership, its since, after a 128-bit secret', () => {
    const plain = newLockValue();
    expect(plain).toMatch(/^[0-9a-f]{32}$/);
    expect(holderOf(plain)).toBe('');
    expect(sinceOf(plain)).toBe(0);

    const held = newLockValue('host:42');
    expect(held).toMatch(/^[0-9a-f]{32}\/host:42$/);
    expect(holderOf(held)).toBe('host:42');
    expect(sinceOf(held)).toBe(0);

    const since = 1_796_000_000_123;
    const leader = newLockValue('a/b@c', since);
    expect(leader).toMatch(/^[0-9a-f]{32}@1796000000123\/a\/b@c$/);
    expect(holderOf(leader)).toBe('a/b@c');
    expect(sinceOf(leader)).toBe(since);

    const anonymous = newLockValue('', since);
    expect(holderOf(anonymous)).toBe('');
    expect(sinceOf(anonymous)).toBe(since);
  });

  it('never hand back the secret, and differ every time', () => {
    const values = new Set(Array.from({ length: 1_000 }, () => newLockValue('x', 5)));
    expect(values.size).toBe(1_000);
    for (const v of values) expect(holderOf(v)).toBe('x');
  });
});
