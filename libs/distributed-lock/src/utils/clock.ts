/**
 * The library's one monotonic clock, in ms: every lock deadline, validity, stall and wait is timed
 * with it (never with `Date.now()`, which jumps with the wall clock). It reads the global
 * `performance` on every call, not a reference taken from `node:perf_hooks` at load time: jest's
 * fake timers replace the global, so deadlines follow `jest.advanceTimersByTime` in users' tests
 * (the testing kit) exactly as their timers do; outside jest both are the same object.
 * @internal
 */
export function monotonicNow(): number {
  return performance.now();
}
