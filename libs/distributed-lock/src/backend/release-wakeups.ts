/**
 * The one release wake-up registry of the backend kit: acquisitions sleep here on the keys they wait
 * for, and a backend wakes them from whatever announces a release (Redis pub/sub, PostgreSQL
 * `NOTIFY`, an etcd delete watch, the in-memory store's own release). Every sleep ends at its
 * timeout at the latest (announcements may be lost: the timeout is the fallback), its timer never
 * outlives it, and `wakeAll()` (a backend closing) ends them all at once.
 * @internal
 */
export class ReleaseWakeups {
  private readonly byKey = new Map<string, Set<() => void>>();
  private readonly sleeping = new Set<() => void>();

  /** How many sleeps are pending. */
  get size(): number {
    return this.sleeping.size;
  }

  /** True while someone sleeps on `key`. */
  isWatched(key: string): boolean {
    return (this.byKey.get(key)?.size ?? 0) > 0;
  }

  /**
   * Resolves when {@link wake} is called for one of `keys`, after `timeoutMs`, or on
   * {@link wakeAll}, whichever comes first; never rejects. With no keys it is a plain pause that
   * `wakeAll` cuts short. `onEnd` runs once when the sleep ends, after it was unregistered.
   */
  sleep(keys: readonly string[], timeoutMs: number, onEnd?: () => void): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        if (!this.sleeping.delete(wake)) return;
        clearTimeout(timer);
        for (const key of keys) {
          const set = this.byKey.get(key);
          set?.delete(wake);
          if (set?.size === 0) this.byKey.delete(key);
        }
        onEnd?.();
        resolve();
      };
      this.sleeping.add(wake);
      for (const key of keys) {
        let set = this.byKey.get(key);
        if (!set) this.byKey.set(key, (set = new Set()));
        set.add(wake);
      }
      const timer = setTimeout(wake, Math.max(0, timeoutMs));
    });
  }

  /** Ends every sleep on `key`: its release was announced. */
  wake(key: string): void {
    const set = this.byKey.get(key);
    if (set) for (const wake of [...set]) wake();
  }

  /** Ends every sleep (the backend is closing). */
  wakeAll(): void {
    for (const wake of [...this.sleeping]) wake();
  }
}
