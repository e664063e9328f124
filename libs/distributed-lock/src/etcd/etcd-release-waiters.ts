import type { Etcd3, Watcher } from 'etcd3';
import { ReleaseWakeups } from '../backend/release-wakeups';

/** Revisions of failed attempts kept for waiters; the oldest go first (tryAcquire never waits). */
const MAX_REMEMBERED = 1_000;

/**
 * Wakes waiting acquisitions on the delete of a key they wait for: a watch per waiter and key,
 * started at the revision after the attempt that found the key held, so a release that happened
 * between that attempt and the watch is replayed (no lost wake-up, unlike pub/sub or NOTIFY). A
 * watch that cannot be set up (cluster down) leaves the waiter to its timeout.
 * @internal
 */
export class EtcdReleaseWaiters {
  private readonly busyAt = new Map<string, number>();
  private readonly wakeups = new ReleaseWakeups();
  private closed = false;

  constructor(private readonly client: Etcd3) {}

  /** Remembers that `keys` were found held at `revision`, for the wait that usually follows. */
  remember(keys: string[], revision: number): void {
    for (const key of keys) {
      this.busyAt.delete(key);
      this.busyAt.set(key, revision);
    }
    while (this.busyAt.size > MAX_REMEMBERED) this.busyAt.delete(this.busyAt.keys().next().value!);
  }

  /** Resolves when one of `keys` is deleted (or expires), or after `timeoutMs`; never rejects. */
  wait(keys: string[], timeoutMs: number): Promise<void> {
    if (this.closed || !(timeoutMs > 0)) return Promise.resolve();
    const watchers: Watcher[] = [];
    const slept = this.wakeups.sleep(keys, timeoutMs, () => {
      for (const watcher of watchers) {
        watcher.removeAllListeners('delete');
        watcher.removeAllListeners('error');
        watcher.on('error', () => undefined);
        watcher.cancel().catch(() => undefined);
      }
    });
    for (const key of keys) {
      const revision = this.busyAt.get(key);
      this.busyAt.delete(key);
      // `only('delete')`: in etcd3 1.1.2 `ignore('put')` filters out the deletes instead.
      let builder = this.client.watch().key(key).only('delete');
      if (revision !== undefined) builder = builder.startRevision(String(revision + 1));
      const watcher = builder.watcher();
      watcher.on('delete', () => this.wakeups.wake(key));
      // Canceled by the server (e.g. the revision was compacted): retry now rather than at timeout.
      watcher.on('error', () => this.wakeups.wake(key));
      watchers.push(watcher);
    }
    return slept;
  }

  /** Wakes every waiter; no new watch starts. */
  close(): void {
    this.closed = true;
    this.wakeups.wakeAll();
    this.busyAt.clear();
  }
}
