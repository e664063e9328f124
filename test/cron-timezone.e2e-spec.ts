import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CronTime as CronTimeClass } from 'cron';
import type { Redis } from 'ioredis';
import { RedisFleet } from './support/redis-fleet';
import { closeAll, delay, inspectors } from './support/lock-app';
import { startReplica, stopReplica, type Replica } from './support/replicas';

const run = promisify(execFile);
/** The `cron` package @nestjs/schedule schedules with (it is not a direct dependency). */
const { CronTime } = createRequire(require.resolve('@nestjs/schedule'))('cron') as {
  CronTime: typeof CronTimeClass;
};
const root = join(__dirname, '..');

/** What one child process reports: its resolved zone and the ticks it computed. */
interface ChildReport {
  zone: string;
  ticks: Record<string, { at: string; period: number } | null>;
}

const NOW = '2026-07-15T12:00:00.000Z';
const CASES = {
  berlin: { meta: { cronTime: '0 30 2 * * *', timeZone: 'Europe/Berlin' }, now: NOW },
  // 2026-03-29: 02:30 does not exist in Berlin; cron fires at 03:00 CEST instead.
  berlinDst: {
    meta: { cronTime: '0 30 2 * * *', timeZone: 'Europe/Berlin' },
    now: '2026-03-29T01:00:00.010Z',
  },
  offset: { meta: { cronTime: '0 30 2 * * *', utcOffset: 330 }, now: NOW },
  process: { meta: { cronTime: '0 30 2 * * *' }, now: NOW },
};

/** A fresh node process with TZ=`zone` computes cronTick for every entry of CASES. */
async function ticksIn(zone: string): Promise<ChildReport> {
  const script = `
    const { cronTick } = require('@app/distributed-lock/exclusive/cron-tick');
    const ticks = {};
    for (const [name, { meta, now }] of Object.entries(${JSON.stringify(CASES)})) {
      const t = cronTick(meta, Date.parse(now));
      ticks[name] = t ? { at: new Date(t.at).toISOString(), period: t.period } : null;
    }
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    process.stdout.write(JSON.stringify({ zone, ticks }));
  `;
  const { stdout } = await run(
    process.execPath,
    ['-r', 'ts-node/register', '-r', 'tsconfig-paths/register', '-e', script],
    {
      cwd: root,
      env: {
        ...process.env,
        TZ: zone,
        TS_NODE_TRANSPILE_ONLY: 'true',
        TS_NODE_PROJECT: join(root, 'tsconfig.json'),
      },
    },
  );
  return JSON.parse(stdout) as ChildReport;
}

describe('cronTick does not depend on the process time zone (child processes with different TZ)', () => {
  it('computes the same zoned ticks in UTC, Asia/Kolkata, America/St_Johns and Pacific/Chatham', async () => {
    const zones = ['UTC', 'Asia/Kolkata', 'America/St_Johns', 'Pacific/Chatham'];
    const reports = await Promise.all(zones.map(ticksIn));
    // The TZ env really took effect in each child (else the comparison below would prove nothing).
    expect(new Set(reports.map((r) => r.zone)).size).toBe(zones.length);

    for (const { zone, ticks } of reports) {
      expect({ zone, berlin: ticks.berlin }).toEqual({
        zone,
        berlin: { at: '2026-07-15T00:30:00.000Z', period: 24 * 3_600_000 },
      });
      expect({ zone, berlinDst: ticks.berlinDst }).toEqual({
        zone,
        berlinDst: { at: '2026-03-29T01:00:00.000Z', period: 23.5 * 3_600_000 },
      });
      expect({ zone, offset: ticks.offset }).toEqual({
        zone,
        offset: { at: '2026-07-14T21:00:00.000Z', period: 24 * 3_600_000 },
      });
    }
    // With neither option the tick is 02:30 in the process zone, where @nestjs/schedule fires it.
    expect(reports.map((r) => r.ticks.process?.at)).toEqual([
      '2026-07-15T02:30:00.000Z', // UTC
      '2026-07-14T21:00:00.000Z', // IST, UTC+05:30
      '2026-07-15T05:00:00.000Z', // NDT, UTC-02:30
      '2026-07-14T13:45:00.000Z', // CHAST, UTC+12:45 (July is winter there)
    ]);
  });
});

describe("@Cron('0 30 2 * * *', { timeZone: 'Europe/Berlin' }) on three replicas in different TZs", () => {
  let fleet: RedisFleet;
  let recordsFleet: RedisFleet;
  let records: Redis;
  let replicas: Replica[] = [];

  beforeAll(async () => {
    [fleet, recordsFleet] = await Promise.all([RedisFleet.start(3), RedisFleet.start(1)]);
    [records] = inspectors(recordsFleet.urls);
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => stopReplica(r, 'SIGKILL')));
    await closeAll([records]);
    await fleet.stop();
    await recordsFleet.stop();
  });

  it('runs the nightly tick exactly once in total', async () => {
    // The replicas' clocks read about LEAD_MS before the next 02:30:00 Berlin time when they are
    // spawned; LEAD_MS covers their start-up (ts-node, Nest bootstrap) with a margin. Their clocks also
    // differ by STAGGER_MS from one another so that their runs do not overlap: with identical clocks
    // all three fire in the same millisecond, and the job lock (held for the 10 ms run) alone would
    // make two of them skip, whatever tick each one computed.
    const LEAD_MS = 20_000;
    const STAGGER_MS = 200;
    const fire = new CronTime('0 30 2 * * *', 'Europe/Berlin').sendAt().toMillis();
    const skew = fire - LEAD_MS - Date.now();
    const realFire = Date.now() + LEAD_MS;
    const zones = ['UTC', 'Asia/Kolkata', 'America/St_Johns'];
    replicas = await Promise.all(
      zones.map((zone, i) =>
        startReplica('cron-replica', {
          MODE: 'tz',
          TZ: zone,
          REDIS_URLS: fleet.urls.join(','),
          RECORDS_URL: recordsFleet.urls[0],
          // Replica i's clock is ahead by i * STAGGER_MS, so it fires that much earlier in real time.
          SKEW_MS: String(skew + i * STAGGER_MS),
          REPLICA: zone,
        }),
      ),
    );
    // Every replica was scheduled before its fire time (else it would wait for tomorrow's).
    expect(Date.now()).toBeLessThan(realFire - (zones.length - 1) * STAGGER_MS - 500);
    await delay(realFire + 1_500 - Date.now());
    await Promise.all(replicas.map((r) => stopReplica(r)));

    const runs = Object.values(await records.hgetall('execs:tz')).map(Number);
    const who: string[] = [];
    for (const k of await records.keys('who:tz:*')) who.push(...(await records.lrange(k, 0, -1)));
    expect({ runs: runs.reduce((a, b) => a + b, 0), who: who.length }).toEqual({ runs: 1, who: 1 });
  });
});
