import { backoffDelay } from './backoff';

const retry = { count: 5, delay: 50, maxDelay: 1_000, jitter: 0.25 };

describe('backoffDelay', () => {
  it('doubles from delay and caps at maxDelay', () => {
    const mid = () => 0.5; // no jitter
    expect([0, 1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, retry, mid))).toEqual([
      50, 100, 200, 400, 800, 1_000, 1_000,
    ]);
  });

  it('spreads each delay by at most ±jitter', () => {
    expect(backoffDelay(2, retry, () => 0)).toBe(150);
    expect(backoffDelay(2, retry, () => 1)).toBe(250);
    expect(backoffDelay(0, { ...retry, jitter: 0 }, Math.random)).toBe(50);
  });
});
