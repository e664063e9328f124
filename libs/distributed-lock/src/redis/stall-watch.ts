import type { Vote } from './quorum';
import { monotonicNow } from '../utils/clock';

/** How often the watch looks while commands are pending. */
const TICK_MS = 50;

/** The error a command gets when its instance is declared stalled. */
export class InstanceStalledError extends Error {
  constructor(index: number, ms: number) {
    super(`Redis instance ${index} answered nothing for ${ms} ms while commands were waiting`);
    this.name = 'InstanceStalledError';
  }
}

interface Instance {
  /** Commands sent and not settled. */
  pending: Set<(error: unknown) => void>;
  /**
   * The watch's tick count at the last answer, or at the moment commands started waiting (a count,
   * not a clock read: stamping every answer with the clock cost more than the rest of the watch).
   */
  heard: number;
  /** Silence counted so far, over on-time ticks only. */
  silent: number;
  /** Declared stalled and silent since: new commands fail at once (they are still sent). */
  stalled: InstanceStalledError | undefined;
}

/**
 * Tells a stalled Redis instance from a busy one. A per-command timeout counts the time a command
 * spends queued in our own client, so a burst of 10,000 acquisitions on healthy Redis looked like an
 * outage. Here an instance is down only when it has answered nothing for `stallMs` while commands
 * were waiting for it: a frozen or unreachable instance is still detected in about `stallMs`
 * (however many commands wait), while one that keeps answering, however far behind, is not.
 *
 * Starvation must not look like silence: a late tick adds at most three ticks' worth of silence (a
 * process too busy to run its timers is too busy to judge), and each decision runs in
 * `setImmediate` after the tick, so answers that arrived meanwhile are read first.
 * @internal
 */
export class StallWatch {
  private readonly instances: Instance[];
  private timer: NodeJS.Timeout | undefined;
  private lastTick = 0;
  /** Ticks so far: what `Instance.heard` is measured in. */
  private ticks = 0;
  private waiting = 0;

  constructor(
    count: number,
    private readonly stallMs: number,
  ) {
    this.instances = Array.from({ length: count }, () => ({
      pending: new Set(),
      heard: 0,
      silent: 0,
      stalled: undefined,
    }));
  }

  /**
   * `command` as sent to instance `index`, as that instance's vote: `toVote(reply)`, or a failed
   * vote when the command fails or the instance is declared stalled first. Never rejects (the vote
   * of a silent instance is "failed", decided without waiting for its command).
   */
  track<T>(index: number, command: Promise<T>, toVote: (reply: T) => Vote): Promise<Vote> {
    const instance = this.instances[index];
    return new Promise<Vote>((resolve) => {
      const fail = (error: unknown) => resolve({ kind: 'failed', error });
      const settle = (answered: boolean) => {
        if (instance.pending.delete(fail)) this.waiting -= 1;
        if (!answered) return;
        instance.heard = this.ticks;
        instance.stalled = undefined;
      };
      if (instance.stalled) {
        // Still silent since it was declared stalled: fail now; the command still goes out, and its
        // answer, whenever it comes, clears the state.
        command.then(
          () => settle(true),
          (error: unknown) => settle(isReply(error)),
        );
        fail(instance.stalled);
        return;
      }
      if (instance.pending.size === 0) instance.heard = this.ticks;
      instance.pending.add(fail);
      this.waiting += 1;
      if (!this.timer) this.start();
      command.then(
        (reply) => {
          settle(true);
          resolve(toVote(reply));
        },
        (error: unknown) => {
          settle(isReply(error));
          fail(error);
        },
      );
    });
  }

  /** Stops watching; pending commands settle on their own. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private start(): void {
    this.lastTick = monotonicNow();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  private tick(): void {
    const now = monotonicNow();
    const gap = now - this.lastTick;
    this.lastTick = now;
    // Heard since the previous tick (or between this one and the decision below): `heard >= since`.
    const since = this.ticks;
    this.ticks += 1;
    if (this.waiting === 0) return this.stop();
    // A late tick means we were starved: that stretch proves little about the instances, so it
    // counts as one normal stretch at most (a steadily lagging process still detects a stall).
    setImmediate(() => this.decide(since, Math.min(gap, TICK_MS * 3)));
  }

  private decide(since: number, gap: number): void {
    this.instances.forEach((instance, index) => {
      if (instance.pending.size === 0 || instance.heard >= since) {
        instance.silent = 0;
        return;
      }
      instance.silent += gap;
      if (instance.silent < this.stallMs) return;
      instance.silent = 0;
      const error = new InstanceStalledError(index, this.stallMs);
      instance.stalled = error;
      const rejects = [...instance.pending];
      instance.pending.clear();
      this.waiting -= rejects.length;
      for (const reject of rejects) reject(error);
    });
  }
}

/** An error reply is an answer (the instance is alive); a timeout or a closed connection is not. */
function isReply(error: unknown): boolean {
  return error instanceof Error && error.name === 'ReplyError';
}
