import { Inject, Injectable, type Type } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import {
  DistributedLockConfigError,
  InvalidLockArgumentError,
  Leader,
  LockService,
  type LockEvent,
  type Leadership,
} from '@app/distributed-lock';
import { leaderKey } from '@app/distributed-lock/backend/held-key';
import { CapturingLogger } from '../support/lock-app';
import type { BootedReplica, ContractLockOptions } from './contract-context';
import { aborted, delay, eventually, type ContractContext } from './contract-context';

/** One term as the `@Leader` method saw it. */
interface Term {
  readonly who: string;
  readonly term: number;
  readonly since: number;
  readonly start: number;
  end?: number;
  reason?: unknown;
}

/** What one test's candidates did: the terms their methods ran, and every event of their apps. */
interface Recorder {
  terms: Term[];
  events: LockEvent[];
  /** Methods running now, and the most at once. */
  inside: number;
  most: number;
  calls: number;
}

const newRecorder = (): Recorder => ({ terms: [], events: [], inside: 0, most: 0, calls: 0 });

/** How a test's `@Leader` method behaves once elected. */
type Behaviour = (leadership: Leadership, term: Term) => Promise<void>;

/** Leads until the signal aborts (then takes `cleanup` ms to return). */
const untilAborted =
  (cleanup = 0): Behaviour =>
  async (leadership) => {
    await new Promise<void>((resolve) => {
      if (leadership.signal.aborted) resolve();
      leadership.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    if (cleanup > 0) await delay(cleanup);
  };

/**
 * A provider class with one `@Leader` method recording into `rec`, and an event tap: a provider
 * whose constructor subscribes (so events emitted during `app.init()` are seen too).
 */
function candidate(
  rec: Recorder,
  options: { name: string; ttl?: number; store?: string },
  behaviour: Behaviour,
): Type[] {
  @Injectable()
  class Worker {
    @Leader(options)
    async work(leadership: Leadership): Promise<void> {
      rec.calls += 1;
      rec.inside += 1;
      rec.most = Math.max(rec.most, rec.inside);
      const term: Term = {
        who: this.who,
        term: leadership.term,
        since: leadership.since,
        start: Date.now(),
      };
      rec.terms.push(term);
      try {
        await behaviour(leadership, term);
      } finally {
        rec.inside -= 1;
        term.end = Date.now();
        term.reason = leadership.signal.reason;
      }
    }

    readonly who = `w${Math.random().toString(36).slice(2, 8)}`;
  }
  @Injectable()
  class EventTap {
    constructor(@Inject(LockService) locks: LockService) {
      locks.events.subscribe((e) => rec.events.push(e));
    }
  }
  return [Worker, EventTap];
}

/** `elected` / `stepped-down` events of election `name`, in order. */
function leaderEvents(rec: Recorder, name: string) {
  return rec.events.filter(
    (e) => (e.type === 'elected' || e.type === 'stepped-down') && e.keys[0] === name,
  ) as Array<Extract<LockEvent, { type: 'elected' | 'stepped-down' }>>;
}

/**
 * Checks the election history: exactly one `elected` then one `stepped-down` per term, terms
 * strictly increasing in election order, and no two leaderships overlapping (each term was elected
 * at or after the previous one stepped down). Returns the terms in order.
 */
function checkHistory(rec: Recorder, name: string): number[] {
  const events = leaderEvents(rec, name);
  const byTerm = new Map<number, { elected: number[]; down: number[]; order: string[] }>();
  events.forEach((e, i) => {
    const entry = byTerm.get(e.term) ?? { elected: [], down: [], order: [] };
    if (e.type === 'elected') entry.elected.push(i);
    else entry.down.push(i);
    entry.order.push(e.type);
    byTerm.set(e.term, entry);
  });
  const latest = Math.max(...byTerm.keys());
  for (const [term, entry] of byTerm) {
    // Exactly once, and stepped-down only after elected (the latest term may still run).
    const expected =
      term === latest && entry.order.length === 1 ? ['elected'] : ['elected', 'stepped-down'];
    expect({ term, order: entry.order }).toEqual({ term, order: expected });
  }
  const elected = events.filter((e) => e.type === 'elected');
  const terms = elected.map((e) => e.term);
  for (let i = 1; i < terms.length; i += 1) expect(terms[i]).toBeGreaterThan(terms[i - 1]);
  for (let i = 1; i < elected.length; i += 1) {
    const previousDown = events.find((e) => e.type === 'stepped-down' && e.term === terms[i - 1]);
    expect(previousDown).toBeDefined();
    expect(elected[i].at).toBeGreaterThanOrEqual(previousDown!.at);
  }
  return terms;
}

/**
 * The leader-election half of the contract (api.md, "Leader election"; issue 17's guarantees), on
 * every backend: one leader at a time with strictly increasing terms, `signal` aborted before the
 * lease can expire, events once per term, shutdown hand-over by release announcement, resign and
 * pause after a method ends (never a hot loop), `leader()` without campaigning, store outages.
 */
export function leaderContract(ctx: ContractContext): void {
  const { boot, harness, key, short } = ctx;

  /**
   * `n` candidates for one election: `n` apps on one store, or (in-memory, one store per app) one
   * app with `n` providers of the candidate class.
   */
  async function candidates(
    n: number,
    classes: Type[],
    options: ContractLockOptions = {},
  ): Promise<BootedReplica[]> {
    const [Worker, EventTap] = classes;
    if (harness.singleReplica) {
      const providers = [
        EventTap,
        ...Array.from({ length: n }, (_, i) => ({ provide: `candidate-${i}`, useClass: Worker })),
      ];
      return [await boot({ providers }, options)];
    }
    const apps: BootedReplica[] = [];
    for (let i = 0; i < n; i += 1) {
      apps.push(
        await boot({ providers: [Worker, EventTap] }, { identity: `candidate-${i}`, ...options }),
      );
    }
    return apps;
  }

  describe('leader election', () => {
    it('elects one leader at a time, with strictly increasing terms and events once per term', async () => {
      const rec = newRecorder();
      const name = key('one-at-a-time');
      const ttl = short(2_000);
      // Each leader works 150 ms and returns: it resigns, a waiting candidate takes over.
      await candidates(
        3,
        candidate(rec, { name, ttl }, () => delay(150)),
      );
      expect(await eventually(() => rec.terms.length >= 6, 20_000)).toBe(true);
      await delay(50);
      expect(rec.most).toBe(1);
      // A method that returned has resigned its term.
      const downs = leaderEvents(rec, name).filter((e) => e.type === 'stepped-down');
      for (const e of downs)
        expect(e).toMatchObject({ reason: 'resigned', handler: 'Worker.work' });
      const terms = checkHistory(rec, name);
      expect(terms.length).toBeGreaterThanOrEqual(6);
      expect(rec.terms.map((t) => t.term)).toEqual(terms.slice(0, rec.terms.length));
      for (const t of rec.terms) expect(Number.isSafeInteger(t.term)).toBe(true);
      if (!harness.singleReplica) {
        // Leadership moves between replicas (a resigning leader pauses before campaigning again).
        expect(new Set(rec.terms.map((t) => t.who)).size).toBeGreaterThan(1);
      }
    });

    it('lead() resolves with a leadership that is extended until resign(); the next term is higher', async () => {
      const { locks, events } = await boot();
      const name = key('lead');
      const ttl = short(1_000);
      const leadership = await locks.lead(name, { ttl, wait: 0 });
      expect(leadership.name).toBe(name);
      expect(leadership.signal.aborted).toBe(false);
      await expect(locks.lead(name, { ttl, wait: 0 })).rejects.toMatchObject({
        name: 'LockBusyError',
      });
      // Held past several TTLs: extended.
      await delay(ttl * 2.5);
      expect(leadership.signal.aborted).toBe(false);
      expect(await locks.isLocked(leaderKey(name))).toBe(true);
      await leadership.resign();
      await leadership.resign();
      expect(leadership.signal.aborted).toBe(true);
      expect(leadership.signal.reason).toBe('resigned');
      expect(await locks.isLocked(leaderKey(name))).toBe(false);
      const next = await locks.lead(name, { ttl, wait: 0 });
      expect(next.term).toBeGreaterThan(leadership.term);
      await next.resign();
      const downs = events.filter((e) => e.type === 'stepped-down');
      expect(downs.map((e) => [e.term, e.type === 'stepped-down' && e.reason])).toEqual([
        [leadership.term, 'resigned'],
        [next.term, 'resigned'],
      ]);
    });

    it('leader() names the leader (identity, term, since) without campaigning, or null', async () => {
      const leaderApp = await boot({}, { identity: 'the-leader' });
      const observer = harness.singleReplica ? leaderApp : await boot({}, { identity: 'observer' });
      const name = key('info');
      expect(await observer.locks.leader(name)).toBeNull();
      // Reading never takes the election.
      expect(await observer.locks.isLocked(leaderKey(name))).toBe(false);
      const leadership = await leaderApp.locks.lead(name, { ttl: short(5_000) });
      const info = await observer.locks.leader(name);
      expect(info).toEqual({
        name,
        identity: 'the-leader',
        term: leadership.term,
        since: leadership.since,
      });
      expect(leadership.since).toBeLessThanOrEqual(Date.now());
      await leadership.resign();
      expect(await observer.locks.leader(name)).toBeNull();
    });

    it('aborts the signal (lost) when an extension is refused, and a rival leads with a higher term', async () => {
      const { locks } = await boot();
      const name = key('refused');
      const ttl = short(1_000);
      const leadership = await locks.lead(name, { ttl });
      // The key vanishes behind the leader's back (evicted, force-released): its next extension is refused.
      await harness.dropKey(leaderKey(name));
      expect(await aborted(leadership.signal, ttl * 2)).toBe('lost');
      const rival = await locks.lead(name, { ttl, wait: ttl * 2 });
      expect(rival.term).toBeGreaterThan(leadership.term);
      await rival.resign();
    });

    it('aborts the signal before the lease can expire when the store is unreachable', async () => {
      const { locks, events } = await boot();
      const name = key('unreachable');
      const ttl = short(1_500);
      const leadership = await locks.lead(name, { ttl });
      await harness.makeUnavailable();
      const reason = await aborted(leadership.signal, ttl * 2);
      const abortedAt = Date.now();
      expect(reason).toBe('lost');
      // The store's lease runs at least `ttl` from when its last grant or extension was sent.
      const renewals = events.filter(
        (e) => (e.type === 'acquired' || e.type === 'extended') && e.keys[0] === leaderKey(name),
      ) as Array<{ at: number; durationMs: number }>;
      const lastSent = Math.max(...renewals.map((e) => e.at - e.durationMs));
      expect(abortedAt).toBeLessThan(lastSent + ttl);
      await harness.restore();
    });

    it('aborts the signal when the event loop was blocked past the deadline, on the first read', async () => {
      const { locks } = await boot();
      const name = key('blocked');
      const ttl = short(1_000);
      const leadership = await locks.lead(name, { ttl });
      expect(leadership.signal.aborted).toBe(false);
      // Block the event loop past the whole TTL: no timer, no extension can run.
      const until = performance.now() + ttl + 100;
      while (performance.now() < until) {
        /* busy */
      }
      // The very first read after resuming, before any await, already says the leadership is gone.
      expect(leadership.signal.aborted).toBe(true);
      expect(leadership.signal.reason).toBe('lost');
      await leadership.resign();
    });

    it('hands over at shutdown: signal reason shutdown, the method returns, a waiting replica leads at once', async () => {
      const rec = newRecorder();
      const name = key('shutdown');
      // A long TTL: a hand-over that waited for the lease would take seconds.
      const ttl = short(10_000);
      // Apps of this test's own, closed here (the leader's mid-test, the other at the end).
      const classes = candidate(rec, { name, ttl }, untilAborted(200));
      const count = harness.singleReplica ? 1 : 2;
      const apps: TestingModule[] = [];
      for (let i = 0; i < count; i += 1) {
        const providers = harness.singleReplica
          ? [classes[1], classes[0], { provide: 'second', useClass: classes[0] }]
          : classes;
        const app = await harness.compile({ providers }, { identity: `candidate-${i}` });
        await app.init();
        apps.push(app);
      }
      const closeAll = () => Promise.all(apps.map((a) => a.close().catch(() => undefined)));
      try {
        await shutdownHandOver(apps, rec, name, ttl);
      } finally {
        await closeAll();
      }
    });

    /** The body of the shutdown test: close the leader's app, watch the other take over. */
    async function shutdownHandOver(
      apps: TestingModule[],
      rec: Recorder,
      name: string,
      ttl: number,
    ): Promise<void> {
      expect(await eventually(() => rec.terms.length === 1, 10_000)).toBe(true);
      const first = rec.terms[0];
      let closing = apps[0];
      if (apps.length > 1) {
        const info = await apps[0].get(LockService).leader(name);
        closing = apps[Number(info!.identity.split('-')[1])];
      }
      const closed = Date.now();
      await closing.close();
      apps.splice(apps.indexOf(closing), 1);
      // The method had its shutdown time to return (200 ms of clean-up) before close() resolved.
      expect(first.end).toBeDefined();
      expect(first.reason).toBe('shutdown');
      if (apps.length === 0) return; // in-memory: the other candidate closed with the same app
      expect(await eventually(() => rec.terms.length === 2, ttl)).toBe(true);
      const second = rec.terms[1];
      expect(second.term).toBeGreaterThan(first.term);
      // Woken by the release announcement: far sooner than the 10 s lease.
      expect(second.start - closed).toBeLessThan(ttl / 2);
      const downs = leaderEvents(rec, name).filter((e) => e.type === 'stepped-down');
      expect(downs[0]).toMatchObject({ term: first.term, reason: 'shutdown' });
    }

    it('lead() at shutdown: signal reason shutdown, the holder resigns, a waiting lead() gets it at once', async () => {
      const name = key('lead-shutdown');
      const ttl = short(10_000);
      const holderApp = await harness.compile({}, { identity: 'holder' });
      await holderApp.init();
      let closed = false;
      try {
        const leadership = await holderApp.get(LockService).lead(name, { ttl });
        let resignedAt = 0;
        leadership.signal.addEventListener('abort', () => {
          // The holder finishes its work, then resigns: shutdown waits for that.
          void delay(100).then(async () => {
            resignedAt = Date.now();
            await leadership.resign();
          });
        });
        const rival = harness.singleReplica ? undefined : await boot({}, { identity: 'rival' });
        const next = rival?.locks.lead(name, { ttl, wait: ttl });
        await delay(50);
        const closing = Date.now();
        await holderApp.close();
        closed = true;
        expect(leadership.signal.reason).toBe('shutdown');
        expect(resignedAt).toBeGreaterThanOrEqual(closing);
        if (next === undefined) return;
        const won = await next;
        // Released at the resign and announced: far sooner than the 10 s lease.
        expect(Date.now() - resignedAt).toBeLessThan(ttl / 2);
        expect(won.term).toBeGreaterThan(leadership.term);
        await won.resign();
      } finally {
        if (!closed) await holderApp.close();
      }
    });

    it('resigns when the method throws, logs it with the handler name, and never loops hot', async () => {
      const rec = newRecorder();
      const name = key('throws');
      const logger = new CapturingLogger();
      await candidates(
        1,
        candidate(rec, { name, ttl: short(1_000) }, () => Promise.reject(new Error('boom'))),
        { logger },
      );
      await delay(2_500);
      const calls = rec.calls;
      // Pauses of 100, 200, 400, 800 ms ... (±25%) between attempts: a handful, not thousands.
      expect(calls).toBeGreaterThanOrEqual(2);
      expect(calls).toBeLessThanOrEqual(8);
      const failures = logger.at('error').filter((m) => m.includes('boom'));
      expect(failures.length).toBeGreaterThanOrEqual(calls - 1);
      expect(failures.length).toBeLessThanOrEqual(calls);
      for (const m of failures) expect(m).toContain('Worker.work');
      checkHistory(rec, name);
      for (const e of leaderEvents(rec, name).filter((x) => x.type === 'stepped-down')) {
        expect(e).toMatchObject({ reason: 'resigned', handler: 'Worker.work' });
      }
    });

    it('store outage: the leader steps down in time, candidates back off quietly, one leads again after', async () => {
      const rec = newRecorder();
      const name = key('outage');
      const ttl = short(1_000);
      const logger = new CapturingLogger();
      await candidates(2, candidate(rec, { name, ttl }, untilAborted()), { logger });
      expect(await eventually(() => rec.terms.length === 1, 10_000)).toBe(true);
      const before = rec.terms.length;
      await harness.makeUnavailable();
      const downAt = Date.now();
      expect(await eventually(() => rec.terms[0].end !== undefined, ttl * 2)).toBe(true);
      expect(rec.terms[0].reason).toBe('lost');
      // Down for three TTLs: nobody may be elected, and the log stays short.
      const linesBefore = logger.lines.length;
      await delay(Math.max(0, downAt + ttl * 3 - Date.now()));
      expect(rec.terms.length).toBe(before);
      const outageLines = logger.lines.slice(linesBefore);
      // Per candidate: one "store down" line, the lost leadership's own lines; no line per attempt.
      expect(outageLines.length).toBeLessThanOrEqual(12);
      await harness.restore();
      const restored = Date.now();
      expect(await eventually(() => rec.terms.length === before + 1, ttl * 3 + 5_000)).toBe(true);
      expect(rec.terms[before].term).toBeGreaterThan(rec.terms[0].term);
      expect(rec.terms[before].start - restored).toBeLessThan(ttl * 3 + 5_000);
      checkHistory(rec, name);
    });

    it('rejects bad input: app.init() fails naming the handler; lead() and leader() name the field', async () => {
      const { locks } = await boot();
      const bad: Array<[string, () => Type, string]> = [
        [
          'empty name',
          () => {
            @Injectable()
            class EmptyName {
              @Leader('')
              run(): void {}
            }
            return EmptyName;
          },
          'EmptyName.run @Leader name',
        ],
        [
          'ttl below the minimum',
          () => {
            @Injectable()
            class TinyTtl {
              @Leader({ name: key('tiny'), ttl: 1 })
              run(): void {}
            }
            return TinyTtl;
          },
          'TinyTtl.run @Leader ttl',
        ],
        [
          'unknown store',
          () => {
            @Injectable()
            class NoStore {
              @Leader({ name: key('nostore'), store: 'nope' })
              run(): void {}
            }
            return NoStore;
          },
          'NoStore.run @Leader store',
        ],
        [
          'twice on one method',
          () => {
            @Injectable()
            class Twice {
              @Leader(key('a'))
              @Leader(key('b'))
              run(): void {}
            }
            return Twice;
          },
          'Twice.run @Leader',
        ],
        [
          'on a property',
          () => {
            @Injectable()
            class OnProperty {
              // @ts-expect-error a property is not a method: refused at bootstrap
              @Leader(key('prop'))
              value = 1;
            }
            return OnProperty;
          },
          'OnProperty.value @Leader',
        ],
      ];
      for (const [what, make, field] of bad) {
        const error = await harness
          .compile({ providers: [make()] }, {})
          .then((m) => m.init())
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect({ what, error }).toMatchObject({
          what,
          error: expect.any(DistributedLockConfigError) as unknown,
        });
        expect((error as DistributedLockConfigError).field).toBe(field);
      }
      const field = (p: Promise<unknown>) =>
        p.then(
          () => 'resolved',
          (e: unknown) => (e instanceof InvalidLockArgumentError ? e.field : String(e)),
        );
      expect(await field(locks.lead(''))).toBe('name');
      expect(await field(locks.lead(42 as unknown as string))).toBe('name');
      expect(await field(locks.lead(key('x'), { ttl: 0 }))).toBe('ttl');
      expect(await field(locks.lead(key('x'), { wait: -1 }))).toBe('wait');
      expect(await field(locks.lead(key('x'), { store: 'nope' }))).toBe('store');
      expect(await field(locks.leader(''))).toBe('name');
      expect(await field(locks.leader(key('x'), { store: 'nope' }))).toBe('store');
    });
  });
}
