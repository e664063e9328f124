/**
 * Exponential backoff for acquisitions that wait for a busy lock. Attempt `i` (0-based) waits
 * `min(delay * 2^i, maxDelay)`, randomized by ±`jitter` (a fraction), before trying again. When the
 * backend announces releases (Redis with pub/sub, PostgreSQL with NOTIFY), a waiter retries as soon
 * as the holder lets go, and `count` sets a time budget instead (the sum of those delays, about
 * 1.55 s by default): losing the race to another woken waiter does not use up an attempt.
 */
export interface RetryOptions {
  /**
   * Retries after the first attempt (0 = a single attempt).
   * @default 5
   */
  count?: number;
  /**
   * First delay between attempts, in ms.
   * @default 50
   */
  delay?: number;
  /**
   * Largest delay between attempts, in ms.
   * @default 1000
   */
  maxDelay?: number;
  /**
   * Random spread of each delay, as a fraction of it (0 to 1), so waiters do not retry in lockstep.
   * @default 0.25
   */
  jitter?: number;
}
