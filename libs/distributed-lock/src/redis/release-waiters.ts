import type { Redis } from 'ioredis';
import { ReleaseWakeups } from '../backend/release-wakeups';
import { isCluster, type LockClient } from './redis-instances';

/** How long a channel stays subscribed after its last waiter left: bursts of contention reuse it. */
const LINGER_MS = 2_000;

/**
 * Wakes acquisitions waiting for a lock the moment its holder releases it. The release script
 * publishes on a channel named like the lock key (`lock:order:42`; channels and keys are separate
 * namespaces, and an ACL `&lock:*` mirrors `~lock:*`). One subscriber connection per instance is
 * created on the first wait (a `duplicate()` of the instance's client, so borrowed clients are never
 * put in subscriber mode), owned here and closed on shutdown.
 *
 * Pub/sub is at-most-once: a message lost to a reconnect or an expiry (nothing is published when a
 * lock just expires) costs a waiter its backoff delay, never its turn; the timeout is the fallback.
 * Redis Cluster clients get no subscriber (a publish there is broadcast to every node): waiting on a
 * Cluster is backoff polling.
 * @internal
 */
export class ReleaseWaiters {
  private subscribers: Redis[] | undefined;
  private readonly wakeups = new ReleaseWakeups();
  private readonly subscribed = new Map<string, Promise<boolean>>();
  private readonly lingering = new Map<string, NodeJS.Timeout>();
  /** Every pending sleep or subscription wait, woken by close(). */
  private readonly sleepers = new Set<() => void>();
  private closed = false;
  /** Set when an instance refused SUBSCRIBE (an ACL without it): waiters poll from then on. */
  private refused = false;
  /** False on a Cluster: releases do not publish, waiters poll. */
  readonly enabled: boolean;

  constructor(private readonly clients: LockClient[]) {
    this.enabled = !clients.some(isCluster);
  }

  /**
   * Resolves when one of `channels` announces a release, after `timeoutMs`, or on close(). The
   * first wait on a channel subscribes and returns as soon as one instance confirmed it (a release
   * may have come before it, so the caller should look again at once): an instance that is down
   * does not hold the wait up, since the majority that runs a release also announces it.
   */
  async wait(channels: string[], timeoutMs: number): Promise<void> {
    if (this.closed) return;
    if (!this.enabled || this.refused) return this.pause(timeoutMs);
    const fresh: Array<Promise<boolean>> = [];
    for (const channel of channels) {
      const linger = this.lingering.get(channel);
      if (linger) {
        clearTimeout(linger);
        this.lingering.delete(channel);
      }
      if (!this.subscribed.has(channel)) {
        const subscribing = this.subscribe(channel);
        this.subscribed.set(channel, subscribing);
        fresh.push(subscribing);
      }
    }
    if (fresh.length > 0) {
      const started = Date.now();
      // The timeout is cleared when the subscription wins: a timer left running would keep a
      // process that is shutting down alive for up to the backoff.
      const subscribed = await this.until(
        Promise.all(fresh).then((done) => done.some(Boolean)),
        timeoutMs,
      );
      this.releaseChannels(channels);
      // Subscribed: look again at once (a release may have come just before). Not subscribed
      // anywhere (down, or refused): this wait is plain backoff, never a hot loop.
      if (subscribed || this.closed) return;
      return this.pause(Math.max(0, timeoutMs - (Date.now() - started)));
    }
    await this.wakeups.sleep(channels, timeoutMs);
    this.releaseChannels(channels);
  }

  /** Closes the subscriber connections and wakes every waiter. */
  close(): void {
    this.closed = true;
    for (const wake of [...this.sleepers]) wake();
    this.sleepers.clear();
    for (const timer of this.lingering.values()) clearTimeout(timer);
    this.lingering.clear();
    this.wakeups.wakeAll();
    this.subscribed.clear();
    const subscribers = this.subscribers ?? [];
    this.subscribers = undefined;
    // A subscriber has nothing to flush: drop it at once (QUIT would wait for a frozen instance).
    for (const s of subscribers) s.disconnect();
  }

  /** ioredis' own `keyPrefix` per client: the script publishes on the prefixed key name. */
  private prefix(i: number): string {
    return (this.clients[i] as Redis).options?.keyPrefix ?? '';
  }

  private connections(): Redis[] {
    if (this.subscribers) return this.subscribers;
    this.subscribers = this.clients.map((client, i) => {
      const prefix = this.prefix(i);
      // Same options as the instance's client, except: queue SUBSCRIBE until connected, retry it across
      // reconnects, and resubscribe after one (the lock clients fail fast instead).
      const sub = (client as Redis).duplicate({
        autoResubscribe: true,
        lazyConnect: false,
        enableOfflineQueue: true,
        maxRetriesPerRequest: null,
      });
      sub.on('error', () => undefined); // the instance's own client reports outages
      sub.on('message', (channel: string) => {
        this.wakeups.wake(channel.slice(prefix.length));
      });
      return sub;
    });
    return this.subscribers;
  }

  /**
   * Resolves true as soon as one instance confirmed the subscription, false once every instance
   * failed it (an instance that is down answers only at its command timeout, or never).
   */
  private subscribe(channel: string): Promise<boolean> {
    const attempts = this.connections().map((s, i) =>
      s.subscribe(this.prefix(i) + channel).then(
        () => true,
        (error: unknown) => {
          // Not subscribed there: forget it so a later wait tries again, unless Redis refused
          // the command itself (NOPERM): then announcements are off for this app.
          this.subscribed.delete(channel);
          if (error instanceof Error && error.name === 'ReplyError') this.refused = true;
          return false;
        },
      ),
    );
    return new Promise((resolve) => {
      let left = attempts.length;
      for (const attempt of attempts) {
        void attempt.then((ok) => {
          left -= 1;
          if (ok) resolve(true);
          else if (left === 0) resolve(false);
        });
      }
    });
  }

  /** Sleeps `ms`, or less if close() comes first. */
  private pause(ms: number): Promise<void> {
    return this.until(new Promise<never>(() => undefined), ms).then(() => undefined);
  }

  /**
   * `promise`'s value, or false after `ms` or on close(), whichever comes first; the timer never
   * outlives the wait.
   */
  private until(promise: Promise<boolean>, ms: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve(value);
      };
      const wake = () => done(false);
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
      void promise.then(done);
    });
  }

  /** Unsubscribes channels nobody waits on any more, after a while. */
  private releaseChannels(channels: string[]): void {
    if (this.closed) return;
    for (const channel of channels) {
      if (this.wakeups.isWatched(channel) || this.lingering.has(channel)) continue;
      const timer = setTimeout(() => {
        this.lingering.delete(channel);
        if (this.wakeups.isWatched(channel)) return;
        this.subscribed.delete(channel);
        (this.subscribers ?? []).forEach((s, i) => {
          void s.unsubscribe(this.prefix(i) + channel).catch(() => undefined);
        });
      }, LINGER_MS);
      timer.unref();
      this.lingering.set(channel, timer);
    }
  }
}
