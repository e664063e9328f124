import { driftFor, minValidity, smallestTtl } from './validity';

describe('lock arithmetic', () => {
  it('leaves nothing grantable below the smallest TTL, and at least 1 ms from it on', () => {
    for (const factor of [0, 0.01, 0.1, 0.5]) {
      const min = smallestTtl(factor);
      const headroom = (ttl: number) => ttl - driftFor(ttl, factor) - minValidity(ttl);
      expect(headroom(min)).toBeGreaterThanOrEqual(1);
      for (let ttl = 1; ttl < min; ttl += 1) expect(headroom(ttl)).toBeLessThan(1);
    }
    expect(smallestTtl()).toBe(4);
    expect(smallestTtl(0.5)).toBe(8);
  });
});
