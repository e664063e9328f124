/**
 * Base class of every error this library throws. Catch it to handle all lock failures at once.
 *
 * @example
 * ```ts
 * try { await locks.acquire('report'); } catch (e) { if (e instanceof DistributedLockError) ... }
 * ```
 */
export class DistributedLockError extends Error {
  /**
   * @param message human-readable description (never contains tokens or credentials)
   * @param options standard `ErrorOptions`; `cause` is kept
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
