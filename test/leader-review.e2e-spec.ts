import { Injectable, type Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  DistributedLockModule,
  Leader,
  type Leadership,
  type LockEvent,
} from '@app/distributed-lock';
import { RedisFleet } from './support/redis-fleet';
import {
  CapturingLogger,
  delay,
  eventually,
  lockApp,
  untilUp,
  type LockApp,
} from './support/lock-app';

/**
 * Review of leader election (issue 17) against a real Redis fleet (3 instances, no persistence):
 * terms across a restart of every instance, the imperative API's edge cases, shutdown, outage logs.
 */
describe('leader election review (Redis x3)', () => {
  let fleet: RedisFleet;
  const apps: LockApp[] = [];
  const realNow = Date.now;

  beforeAll(async () => {
    fleet = await RedisFleet.start(3);
  });
  afterEach(async () => {
    Date.now = realNow;
    await Promise.all(apps.splice(0).map((a) => a.close().catch(() => undefined)));
  });
  afterAll(async () => {
    await fleet.stop();
  });

  async function replica(extra: Record<string, unknown> = {}): Promise<LockApp> {
    const a = await lockApp({ connections: fleet.urls, commandTimeout: 250, ...extra });
    apps.push(a);
    return a;
  }

  it('terms keep increasing across a restart of every instance (no persistence), same clock', async () => {
    const a = await replica();
    const first = await a.locks.lead('review-restart', { ttl: 1_000 });
    await first.resign();
    await Promise.all(fleet.nodes.map((n) => n.restart()));
    await untilUp(a, 3);
    const second = await a.locks.lead('review-restart', { ttl: 1_000 });
    await second.resign();
    console.log(`restart, same clock: term ${first.term} -> ${second.term}`);
    expect(second.term).toBeGreaterThan(first.term);
  });

  // Known limit (docs/SAFETY.md, docs/LEADER.md guarantee 2): after every instance restarted empty,
  // the term is floored only by the new leader's wall clock, so a replica 1 s behind issues a LOWER
  // term. `it.failing` asserts that this still happens; once fixed it fails: flip it to `it`.
  it.failing(
    'terms keep increasing across a restart of every instance when the next leader clock is 1 s behind',
    async () => {
      const a = await replica();
      const first = await a.locks.lead('review-skew', { ttl: 1_000 });
      await first.resign();
      await Promise.all(fleet.nodes.map((n) => n.restart()));
      await untilUp(a, 3);
      // Another replica whose wall clock runs 1 s behind (NTP skew of that size is common on VMs).
      const skew = 1_000;
      Date.now = () => realNow() - skew;
      const second = await a.locks.lead('review-skew', { ttl: 1_000 });
      Date.now = realNow;
      await second.resign();
      console.log(`restart, clock ${skew} ms behind: term ${first.term} -> ${second.term}`);
      expect(second.term).toBeGreaterThan(first.term);
    },
  );

  it('one replica with a clock set past the year 2255 does not disable the election for everyone', async () => {
    const a = await replica();
    const before = await a.locks.lead('review-future', { ttl: 1_000 });
    await before.resign();
    // A replica booted with a broken RTC: its clock is 250 years ahead (µs floor above 2^53).
    Date.now = () => realNow() + 250 * 365 * 86_400_000;
    const bad = await a.locks.lead('review-future', { wait: 0, ttl: 1_000 }).then(
      async (l) => (await l.resign(), `term ${l.term}`),
      (e: Error) => e.name,
    );
    Date.now = realNow;
    // Every healthy replica afterwards:
    const after = await a.locks.lead('review-future', { wait: 0, ttl: 1_000 }).then(
      async (l) => (await l.resign(), `term ${l.term}`),
      (e: Error) => `${e.name}: ${e.message}`,
    );
    console.log(
      `future clock: before term ${before.term}; bad replica: ${bad}; healthy replica after: ${after}`,
    );
    expect(after).toMatch(/^term \d+$/);
  });

  it('a wall-clock jump while leading does not end the leadership nor change since (monotonic deadline)', async () => {
    const a = await replica();
    const l = await a.locks.lead('review-jump', { ttl: 1_000 });
    Date.now = () => realNow() + 3_600_000;
    await delay(2_500);
    expect(l.signal.aborted).toBe(false);
    Date.now = () => realNow() - 3_600_000;
    await delay(2_500);
    expect(l.signal.aborted).toBe(false);
    Date.now = realNow;
    const info = await a.locks.leader('review-jump');
    expect(info).toMatchObject({ term: l.term, since: l.since });
    await l.resign();
    expect(await a.locks.leader('review-jump')).toBeNull();
  });

  it('resign() twice, resign() after loss: no throw, one stepped-down per term, after elected', async () => {
    const a = await replica();
    const events: LockEvent[] = [];
    a.locks.events.subscribe((e) => events.push(e));
    const l = await a.locks.lead('review-resign', { ttl: 1_000 });
    await l.resign();
    await l.resign();
    expect(l.signal.reason).toBe('resigned');
    const l2 = await a.locks.lead('review-resign', { ttl: 1_000 });
    // Lose it: every instance forgets the key (as an operator FLUSHALL or a restart would).
    await Promise.all(fleet.nodes.map((n) => n.restart()));
    expect(await eventually(() => l2.signal.aborted, 3_000)).toBe(true);
    expect(l2.signal.reason).toBe('lost');
    await expect(l2.resign()).resolves.toBeUndefined();
    await untilUp(a, 3);
    const mine = events.filter(
      (e) => (e.type === 'elected' || e.type === 'stepped-down') && e.keys[0] === 'review-resign',
    ) as Array<LockEvent & { term: number; reason?: string }>;
    expect(mine.map((e) => `${e.type}:${e.term}:${e.reason ?? ''}`)).toEqual([
      `elected:${l.term}:`,
      `stepped-down:${l.term}:resigned`,
      `elected:${l2.term}:`,
      `stepped-down:${l2.term}:lost`,
    ]);
  });

  it('lead() with wait 0 while another leads: LockBusyError; lead() during shutdown rejects', async () => {
    const a = await replica();
    const b = await replica();
    const l = await a.locks.lead('review-busy', { ttl: 1_000 });
    const t0 = performance.now();
    await expect(b.locks.lead('review-busy', { wait: 0 })).rejects.toMatchObject({
      name: 'LockBusyError',
    });
    const waited = performance.now() - t0;
    // Resigning wakes a waiter within about a round trip.
    const pending = b.locks.lead('review-busy', { wait: 5_000, ttl: 1_000 });
    await delay(200);
    const r0 = performance.now();
    await l.resign();
    const l2 = await pending;
    const handover = performance.now() - r0;
    console.log(
      `lead wait 0 answered in ${waited.toFixed(1)} ms; handover after resign ${handover.toFixed(1)} ms`,
    );
    expect(l2.term).toBeGreaterThan(l.term);
    const closing = b.close();
    await expect(b.locks.lead('review-other', { wait: 0 })).rejects.toBeDefined();
    await closing;
    expect(l2.signal.reason).toBe('shutdown');
    apps.splice(apps.indexOf(b), 1);
  });

  it('bad input: lead() and leader() name the field', async () => {
    const a = await replica();
    const bad: Array<[() => Promise<unknown>, string]> = [
      [() => a.locks.lead(''), 'name'],
      [() => a.locks.lead(42 as unknown as string), 'name'],
      [() => a.locks.lead('x', { ttl: -1 }), 'ttl'],
      [() => a.locks.lead('x', { ttl: 0 }), 'ttl'],
      [() => a.locks.lead('x', { wait: -5 }), 'wait'],
      [() => a.locks.lead('x', { wait: Number.NaN }), 'wait'],
      [() => a.locks.lead('x', { store: 'nope' }), 'store'],
      [() => a.locks.leader(''), 'name'],
      [() => a.locks.leader('x', { store: 'nope' }), 'store'],
      [() => a.locks.lead('x', null as unknown as object), 'options'],
    ];
    const seen: string[] = [];
    for (const [call, field] of bad) {
      try {
        const r = await call();
        seen.push(`${field}: resolved ${JSON.stringify(r && (r as { term?: number }).term)}`);
        if (r && typeof (r as { resign?: unknown }).resign === 'function') {
          await (r as { resign(): Promise<void> }).resign();
        }
      } catch (e) {
        seen.push(
          `${field}: ${(e as Error).name} field=${String((e as { field?: string }).field)}`,
        );
      }
    }
    console.log(seen.join('\n'));
    expect(seen).toEqual(bad.map(([, f]) => `${f}: InvalidLockArgumentError field=${f}`));
  });

  it('store outage: log lines while every instance is paused, and recovery time', async () => {
    const logger = new CapturingLogger();
    const a = await replica({ logger });
    const l = await a.locks.lead('review-outage', { ttl: 1_000 });
    fleet.nodes.forEach((n) => n.pause());
    const down = performance.now();
    try {
      expect(await eventually(() => l.signal.aborted, 2_000)).toBe(true);
      const lostAfter = performance.now() - down;
      const before = logger.lines.length;
      const attempts: string[] = [];
      const t = performance.now();
      while (performance.now() - t < 3_000) {
        await a.locks.lead('review-outage', { wait: 0 }).then(
          (x) => x.resign(),
          (e: Error) => attempts.push(e.name),
        );
        await delay(100);
      }
      const lines = logger.lines.length - before;
      console.log(
        `outage: lost after ${lostAfter.toFixed(0)} ms; ${attempts.length} lead() attempts in 3 s, ${lines} log lines; ${logger.lines
          .slice(0, 6)
          .map((x) => x.message)
          .join(' | ')}`,
      );
      expect(lostAfter).toBeLessThan(1_000);
    } finally {
      fleet.nodes.forEach((n) => n.resume());
    }
    const up = performance.now();
    let again;
    let failures = 0;
    while (!again) {
      again = await a.locks.lead('review-outage', { wait: 5_000, ttl: 1_000 }).catch(() => {
        failures += 1;
        return undefined;
      });
      if (!again) await delay(50);
    }
    console.log(
      `outage: led again ${(performance.now() - up).toFixed(0)} ms after resume (${failures} failed lead() calls first), term ${l.term} -> ${again.term}`,
    );
    expect(again.term).toBeGreaterThan(l.term);
    await again.resign();
  });

  async function leaderApp(worker: Type, extra: Record<string, unknown> = {}) {
    const app = await Test.createTestingModule({
      imports: [
        DistributedLockModule.forRoot({
          logger: false,
          connections: fleet.urls,
          commandTimeout: 250,
          ...extra,
        }),
      ],
      providers: [worker],
    }).compile();
    await app.init();
    return app;
  }

  it('a @Leader method that returns at once does not loop hot (campaigns counted over 3 s)', async () => {
    let calls = 0;
    @Injectable()
    class Quick {
      @Leader({ name: 'review-quick', ttl: 1_000 })
      work(): void {
        calls += 1;
      }
    }
    const app = await leaderApp(Quick);
    await delay(3_000);
    await app.close();
    console.log(`returns at once: ${calls} terms in 3 s`);
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(10);
  });

  it('app.close() while the @Leader method ignores its signal: bounded by shutdownTimeout; successor only after the lease', async () => {
    const terms: Array<{ who: string; term: number; at: number }> = [];
    let stop = false;
    function worker(who: string, ignore: boolean): Type {
      @Injectable()
      class W {
        @Leader({ name: 'review-ignore', ttl: 1_500 })
        async work(l: Leadership): Promise<void> {
          terms.push({ who, term: l.term, at: performance.now() });
          while (!stop && (ignore || !l.signal.aborted)) await delay(10);
        }
      }
      return W;
    }
    const a = await leaderApp(worker('a', true), { shutdownTimeout: 300 });
    expect(await eventually(() => terms.length === 1, 5_000)).toBe(true);
    const b = await leaderApp(worker('b', false));
    const t0 = performance.now();
    await a.close();
    const closeMs = performance.now() - t0;
    expect(await eventually(() => terms.length === 2, 5_000)).toBe(true);
    const successorMs = terms[1].at - t0;
    stop = true;
    await b.close();
    console.log(
      `ignoring leader: close took ${closeMs.toFixed(0)} ms (shutdownTimeout 300), successor ${successorMs.toFixed(0)} ms after close began (ttl 1500)`,
    );
    expect(closeMs).toBeLessThan(1_000);
    // The ignoring method may still act: the lease must not be handed over before it expires.
    expect(successorMs).toBeGreaterThan(1_000);
    expect(terms[1].term).toBeGreaterThan(terms[0].term);
  });
});
