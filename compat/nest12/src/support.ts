/** Small helpers shared by the scenarios and the replica process. */

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A required environment variable (set by scripts/check-nest12.sh). */
export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through scripts/check-nest12.sh`);
  return value;
}

/** Throws with `message` unless `ok`. */
export function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

/** Rejects when `promise` has not settled within `ms`, naming `what`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
