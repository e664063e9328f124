/** Assertions and helpers shared by the compat cases (copied into each case's src/shared/ by scripts/check-compat.ts). */

/** Throws with `message` when `condition` is false. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** An environment variable the runner must set. */
export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (scripts/check-compat.ts sets it)`);
  return value;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `done` every 50 ms until it is true; fails with `message` after `ms`. */
export async function until(done: () => boolean, ms: number, message: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(message);
    await sleep(50);
  }
}
