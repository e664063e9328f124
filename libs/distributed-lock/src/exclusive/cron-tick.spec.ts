import { createRequire } from 'node:module';
import type { CronTime as CronTimeClass } from 'cron';
import { cronTick, type CronMetadata } from './cron-tick';

/** The `cron` package @nestjs/schedule schedules with (it is not a direct dependency). */
const { CronTime } = createRequire(require.resolve('@nestjs/schedule'))('cron') as {
  CronTime: typeof CronTimeClass;
};

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString();
/** The tick as ISO strings, so a failure shows readable instants. */
const tickOf = (meta: CronMetadata, now: number) => {
  const tick = cronTick(meta, now);
  return tick && { at: iso(tick.at), period: tick.period };
};

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

describe('cronTick', () => {
  describe('every second', () => {
    const meta = { cronTime: '* * * * * *' };
    const fire = at('2026-01-10T10:00:07.000Z');

    it('maps a punctual firing to its own tick', () => {
      expect(tickOf(meta, fire + 3)).toEqual({ at: '2026-01-10T10:00:07.000Z', period: SECOND });
    });

    it('maps a firing 0.6 and 0.95 of a period late to the earlier tick', () => {
      expect(tickOf(meta, fire + 600)).toEqual({ at: '2026-01-10T10:00:07.000Z', period: SECOND });
      expect(tickOf(meta, fire + 950)).toEqual({ at: '2026-01-10T10:00:07.000Z', period: SECOND });
    });

    it('maps a firing 2 ms early to the upcoming tick', () => {
      expect(tickOf(meta, fire - 2)).toEqual({ at: '2026-01-10T10:00:07.000Z', period: SECOND });
    });
  });

  describe('every 5 minutes', () => {
    const meta = { cronTime: '0 */5 * * * *' };
    const fire = at('2026-01-10T10:05:00.000Z');
    const period = 5 * MINUTE;

    it('maps a punctual firing to its own tick', () => {
      expect(tickOf(meta, fire + 12)).toEqual({ at: '2026-01-10T10:05:00.000Z', period });
    });

    it('maps a firing 0.6 and 0.95 of a period late to the earlier tick', () => {
      expect(tickOf(meta, fire + 0.6 * period)).toEqual({ at: '2026-01-10T10:05:00.000Z', period });
      expect(tickOf(meta, fire + 0.95 * period)).toEqual({
        at: '2026-01-10T10:05:00.000Z',
        period,
      });
    });

    it('maps a firing 2 ms early to the upcoming tick', () => {
      expect(tickOf(meta, fire - 2)).toEqual({ at: '2026-01-10T10:05:00.000Z', period });
    });
  });

  it('reports the distance to the following fire time when periods are uneven', () => {
    const meta = { cronTime: '0 0 9,17 * * *', utcOffset: 0 };
    expect(tickOf(meta, at('2026-01-10T09:00:00.004Z'))).toEqual({
      at: '2026-01-10T09:00:00.000Z',
      period: 8 * HOUR,
    });
    expect(tickOf(meta, at('2026-01-10T17:00:00.004Z'))).toEqual({
      at: '2026-01-10T17:00:00.000Z',
      period: 16 * HOUR,
    });
    // 13 hours late, past the midpoint of the 16-hour gap: still the 17:00 tick.
    expect(tickOf(meta, at('2026-01-11T06:00:00.000Z'))?.at).toBe('2026-01-10T17:00:00.000Z');
  });

  describe("timeZone: 'Europe/Berlin', 02:30 daily", () => {
    const meta = { cronTime: '0 30 2 * * *', timeZone: 'Europe/Berlin' };

    it('is 02:30 Berlin time in winter (CET, UTC+1) and summer (CEST, UTC+2)', () => {
      expect(tickOf(meta, at('2026-01-15T01:30:00.010Z'))).toEqual({
        at: '2026-01-15T01:30:00.000Z',
        period: 24 * HOUR,
      });
      expect(tickOf(meta, at('2026-07-15T00:30:00.010Z'))).toEqual({
        at: '2026-07-15T00:30:00.000Z',
        period: 24 * HOUR,
      });
      // Half a day late is still that night's tick.
      expect(tickOf(meta, at('2026-07-15T12:00:00.000Z'))?.at).toBe('2026-07-15T00:30:00.000Z');
    });

    it('follows cron across the spring-forward night (02:30 does not exist; cron fires at 03:00 CEST)', () => {
      expect(tickOf(meta, at('2026-03-28T01:30:00.005Z'))).toEqual({
        at: '2026-03-28T01:30:00.000Z',
        period: 23.5 * HOUR,
      });
      expect(tickOf(meta, at('2026-03-29T01:00:00.005Z'))).toEqual({
        at: '2026-03-29T01:00:00.000Z',
        period: 23.5 * HOUR,
      });
      expect(tickOf(meta, at('2026-03-30T00:30:00.005Z'))).toEqual({
        at: '2026-03-30T00:30:00.000Z',
        period: 24 * HOUR,
      });
    });

    it('follows cron across the fall-back night (02:30 happens twice; cron fires at the first)', () => {
      expect(tickOf(meta, at('2026-10-25T00:30:00.005Z'))).toEqual({
        at: '2026-10-25T00:30:00.000Z',
        period: 25 * HOUR,
      });
      // Half an hour late, inside the repeated hour (02:00 CET again): still the 02:30 CEST tick.
      expect(tickOf(meta, at('2026-10-25T01:00:00.000Z'))?.at).toBe('2026-10-25T00:30:00.000Z');
      // 0.95 of the 25-hour period late.
      expect(tickOf(meta, at('2026-10-26T00:15:00.000Z'))?.at).toBe('2026-10-25T00:30:00.000Z');
      expect(tickOf(meta, at('2026-10-26T01:30:00.005Z'))).toEqual({
        at: '2026-10-26T01:30:00.000Z',
        period: 24 * HOUR,
      });
    });
  });

  it('applies utcOffset in minutes (330 = UTC+05:30, -150 = UTC-02:30)', () => {
    expect(
      tickOf({ cronTime: '0 30 2 * * *', utcOffset: 330 }, at('2026-07-14T21:00:00.020Z')),
    ).toEqual({ at: '2026-07-14T21:00:00.000Z', period: 24 * HOUR });
    expect(
      tickOf({ cronTime: '0 30 2 * * *', utcOffset: -150 }, at('2026-07-15T05:00:00.020Z')),
    ).toEqual({ at: '2026-07-15T05:00:00.000Z', period: 24 * HOUR });
  });

  it('is undefined for a cron time that is not an expression', () => {
    expect(cronTick({ cronTime: new Date('2026-01-01T00:00:00Z') }, Date.now())).toBeUndefined();
    expect(cronTick({ cronTime: undefined }, Date.now())).toBeUndefined();
    expect(cronTick({}, Date.now())).toBeUndefined();
  });

  describe('agrees with the instant cron itself schedules', () => {
    const metas: CronMetadata[] = [
      { cronTime: '0 30 2 * * *', timeZone: 'Europe/Berlin' },
      { cronTime: '0 30 2 * * *', timeZone: 'America/St_Johns' },
      { cronTime: '0 0 3 * * *', timeZone: 'Pacific/Chatham' },
      { cronTime: '0 30 2 * * *', utcOffset: 330 },
      { cronTime: '0 45 23 * * 1-5', utcOffset: -150 },
      { cronTime: '0 30 2 * * *' },
      { cronTime: '*/10 * * * * *' },
    ];
    const froms = [
      '2026-01-15T12:00:00.000Z',
      '2026-03-27T12:00:00.000Z',
      '2026-04-04T00:00:00.000Z',
      '2026-10-24T12:00:00.000Z',
      '2026-11-01T00:00:00.000Z',
    ].map(at);
    afterEach(() => jest.restoreAllMocks());

    it.each(metas)('%j', (meta) => {
      for (const from of froms) {
        const spy = jest.spyOn(Date, 'now').mockReturnValue(from);
        const time =
          meta.utcOffset === undefined
            ? new CronTime(meta.cronTime as string, meta.timeZone ?? null)
            : new CronTime(meta.cronTime as string, null, meta.utcOffset);
        const fires = time.sendAt(3).map((d) => d.toMillis());
        spy.mockRestore();
        for (const [i, fire] of fires.slice(0, 2).entries()) {
          const expected = { at: iso(fire), period: fires[i + 1] - fire };
          expect(tickOf(meta, fire - 2)).toEqual(expected);
          expect(tickOf(meta, fire + 40)).toEqual(expected);
          expect(tickOf(meta, fire + 0.9 * expected.period)).toEqual(expected);
        }
      }
    });
  });
});

describe('cronTick stays cheap at a fall-back hour', () => {
  it('finds a tick in a bounded number of cron look-ups just before Berlin falls back', () => {
    // In the 20 ms before 2026-10-25T01:00:00Z (03:00 CEST → 02:00 CET) the look-back lands an hour
    // early and the forward walk used to take ~3,600 steps (over a second of blocked event loop).
    const spy = jest.spyOn(CronTime.prototype, 'getNextDateFrom');
    try {
      const meta: CronMetadata = { cronTime: '* * * * * *', timeZone: 'Europe/Berlin' };
      for (const now of [
        at('2026-10-25T00:59:59.981Z'),
        at('2026-10-25T00:59:59.988Z'),
        at('2026-10-25T00:59:59.999Z'),
      ]) {
        spy.mockClear();
        // In a live process the clock luxon reads agrees with `now`.
        const clock = jest.spyOn(Date, 'now').mockReturnValue(now);
        const tick = cronTick(meta, now);
        clock.mockRestore();
        expect(spy.mock.calls.length).toBeLessThanOrEqual(100);
        // A fire time at or before now + 20 ms, and a positive period: a sane claim, found quickly.
        expect(tick!.at).toBeLessThanOrEqual(now + 20);
        expect(tick!.period).toBeGreaterThan(0);
      }
    } finally {
      spy.mockRestore();
    }
  });
});
