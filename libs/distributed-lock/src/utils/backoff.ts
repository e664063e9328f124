import type { ResolvedRetry } from '../options/resolved-options';

/**
 * Delay before retry number `attempt` (0-based): exponential, capped, with random jitter.
 * @internal
 */
export function backoffDelay(
  attempt: number,
  retry: ResolvedRetry,
  random: () => number = Math.random,
): number {
  const base = Math.min(retry.delay * 2 ** attempt, retry.maxDelay);
  const spread = base * retry.jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(base + spread));
}

/**
 * Resolves after `ms` milliseconds.
 * @internal
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
