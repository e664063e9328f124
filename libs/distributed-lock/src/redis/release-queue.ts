import { monotonicNow } from '../utils/clock';
import type { Tally } from './quorum';
import type { LockClient } from './redis-instances';

/** Most releases kept per instance while its connection is down. */
const MAX_PENDING = 10_000;

/** Sends the owner-checked release script to one instance (`dlockRelease`). @internal */
export type SendRelease = (i: number, redisKeys: string[], value: string) => Promise<unknown>;

/**
 * The owner-checked releases of the Redis backend, per instance: a release (or the undo of a
 * failed vote) whose connection was down or dropped is kept and sent again on that client's next
 * `ready`, until the moment its keys expire anyway. No timers: an instance that stays down costs a
 * bounded map, not a storm of re-sends.
 * @internal
 */
export class ReleaseQueue {
  /** Per instance: value → keys and the monotonic moment they expire anyway. */
  private readonly pending: Array<Map<string, { keys: string[]; until: number }>>;
  private readonly unwatchReady: Array<() => void> = [];
  private closed = false;

  constructor(
    clients: readonly LockClient[],
    private readonly send: SendRelease,
  ) {
    this.pending = clients.map(() => new Map<string, { keys: string[]; until: number }>());
    clients.forEach((client, i) => {
      const flush = () => this.flush(i);
      client.on('ready', flush);
      this.unwatchReady.push(() => client.off('ready', flush));
    });
  }

  /**
   * Undoes a failed vote on every instance that did not refuse it, including those that have not
   * answered yet: the release goes out on the same connection behind the request, so an instance
   * that was slow or paused runs it right after the request and is left holding nothing.
   */
  undo(tally: Tally, redisKeys: string[], value: string, until: number): void {
    for (let i = 0; i < this.pending.length; i += 1) {
      if (!tally.refusedBy[i]) this.releaseOn(i, redisKeys, value, until);
    }
  }

  /** Releases on every instance without waiting or reporting (see {@link releaseOn}). */
  releaseAll(redisKeys: string[], value: string, until: number): void {
    for (let i = 0; i < this.pending.length; i += 1) this.releaseOn(i, redisKeys, value, until);
  }

  /**
   * Sends an owner-checked release to instance `i`. If the connection was down or dropped (a reset
   * between the request and the undo would otherwise leave the grant for the whole TTL), the undo
   * waits for that client's next `ready` and goes out again then, until `until` (monotonic), after
   * which the key has expired anyway. A timed-out release was written already: not queued again.
   */
  releaseOn(i: number, redisKeys: string[], value: string, until: number): void {
    this.sendRelease(i, redisKeys, value, until).catch(() => undefined);
  }

  /**
   * The owner-checked release on instance `i`, whose reply the caller may count. When it fails
   * because the connection was down or dropped, it is queued for that client's next `ready` (see
   * {@link releaseOn}).
   */
  sendRelease(i: number, redisKeys: string[], value: string, until: number): Promise<unknown> {
    const sent = this.send(i, redisKeys, value);
    sent.catch((error: unknown) => {
      if (this.closed || isReplyError(error) || monotonicNow() >= until) return;
      if (error instanceof Error && /timed out/i.test(error.message)) return;
      const pending = this.pending[i];
      pending.set(value, { keys: redisKeys, until });
      // Full: drop the oldest (insertion order; it expires first anyway). O(1) per release.
      if (pending.size > MAX_PENDING) pending.delete(pending.keys().next().value!);
    });
    return sent;
  }

  /** Stops re-sending and forgets what waited. */
  close(): void {
    this.closed = true;
    for (const unwatch of this.unwatchReady.splice(0)) unwatch();
    for (const pending of this.pending) pending.clear();
  }

  /** Sends the releases that waited for instance `i` to come back. */
  private flush(i: number): void {
    const pending = this.pending[i];
    if (pending.size === 0) return;
    const now = monotonicNow();
    const entries = [...pending];
    pending.clear();
    for (const [value, { keys, until }] of entries) {
      if (until > now) this.releaseOn(i, keys, value, until);
    }
  }
}

/** A reply error means Redis answered (the release ran or was refused); anything else may not have. */
function isReplyError(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError';
}
