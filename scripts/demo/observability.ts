/**
 * The demo's look at one live replica from the outside, as a load balancer and Prometheus see it:
 * `GET /health` (src/health/health.controller.ts) and one scrape of `/metrics` (src/telemetry.ts),
 * the scrape's lock counts compared with what the replica's `LockEventsListener` counted from
 * `LockService.events` just before and just after it.
 */
import type { Redis } from 'ioredis';
import { HANDLERS, type Check } from './lock-events';

/** Metric families the demo prints from the scrape. */
const SHOWN = ['lock_acquire_duration', 'lock_skipped'];

/** One sample of a Prometheus text exposition: `name{labels} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  /** The line as scraped. */
  line: string;
}

/** The `distributedLock` details of a `/health` answer. */
interface LockHealth {
  status?: string;
  instances?: number;
  up?: number;
  quorum?: number;
}

/** What the demo fetched from one live replica. */
export interface Observation {
  replica: string;
  /** Epoch ms of the `/health` request. */
  at: number;
  health: { url: string; status: number; body: string; lock?: LockHealth };
  metrics: { url: string; status: number; samples: Sample[] };
  /** The replica's `<handler>|<outcome>` counts from `LockService.events`, read before the scrape. */
  eventsBefore: Map<string, number>;
  /** The same, read after the scrape. */
  eventsAfter: Map<string, number>;
}

/** A replica to probe: its name, HTTP port and metrics port. */
export interface ProbeTarget {
  name: string;
  port: number;
  metricsPort: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Parses the samples of a Prometheus text exposition (comments and blank lines skipped). */
export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key] = value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: m[1], labels, value: Number(m[3]), line });
  }
  return samples;
}

/** The value of the sample `name` with exactly these label values (0 when there is none). */
function sampleValue(samples: Sample[], name: string, labels: Record<string, string>): number {
  const found = samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return found?.value ?? 0;
}

async function fetchText(url: string): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    return { status: res.status, body: await res.text() };
  } catch (error) {
    return { status: 0, body: String(error) };
  }
}

const toCounts = (hash: Record<string, string>) =>
  new Map(Object.entries(hash).map(([k, v]) => [k, Number(v)]));

/**
 * Fetches `/health` of `target`, then scrapes its `/metrics` once, reading its lock-event counts
 * from the audit Redis just before and just after the scrape. The scrape is taken half a second
 * after a cron tick fired, so the tick's lock calls (and the audit writes of their events) are over.
 */
export async function observe(audit: Redis, target: ProbeTarget): Promise<Observation> {
  const at = Date.now();
  const healthUrl = `http://127.0.0.1:${target.port}/health`;
  const health = await fetchText(healthUrl);
  let lock: LockHealth | undefined;
  try {
    lock = (JSON.parse(health.body) as { details?: { distributedLock?: LockHealth } }).details
      ?.distributedLock;
  } catch {
    // not JSON: the check reports the status and the body
  }

  await sleep(1_500 - (Date.now() % 1_000));
  const eventsKey = `demo:lock-events:${target.name}`;
  const eventsBefore = toCounts(await audit.hgetall(eventsKey));
  const metricsUrl = `http://127.0.0.1:${target.metricsPort}/metrics`;
  const scrape = await fetchText(metricsUrl);
  await sleep(100); // lets an audit write of an event the scrape already counted land
  const eventsAfter = toCounts(await audit.hgetall(eventsKey));
  return {
    replica: target.name,
    at,
    health: { url: healthUrl, status: health.status, body: health.body, lock },
    metrics: {
      url: metricsUrl,
      status: scrape.status,
      samples: scrape.status === 200 ? parseSamples(scrape.body) : [],
    },
    eventsBefore,
    eventsAfter,
  };
}

/** What the demo prints: the health answer, then the scrape's lock_acquire_duration / lock_skipped samples. */
export function formatObservation(o: Observation): string {
  const shown = o.metrics.samples.filter((s) =>
    SHOWN.some((family) => s.name.startsWith(`${family}_`)),
  );
  const buckets = shown.filter((s) => s.name.endsWith('_bucket')).length;
  const lines = shown.filter((s) => !s.name.endsWith('_bucket')).map((s) => s.line);
  return [
    `GET ${o.health.url} (replica ${o.replica}) -> ${o.health.status} ${o.health.body.trim()}`,
    `GET ${o.metrics.url} (replica ${o.replica}) -> ${o.metrics.status}, ${o.metrics.samples.length} samples; ` +
      `the lock_acquire_duration and lock_skipped ones (${buckets} _bucket lines not shown):`,
    ...(lines.length > 0 ? lines.map((l) => `  ${l}`) : ['  (none)']),
  ].join('\n');
}

/**
 * The verdict lines: `/health` answered 200, up, with every one of `instances` running lock
 * instances up; the scrape holds `lock_acquire_duration` samples of the report job, and its counts
 * of the report job's acquisitions and tick-claimed skips lie between the replica's
 * `LockService.events` counts read just before and just after the scrape.
 */
export function observationChecks(o: Observation, instances: number): Check[] {
  const lock = o.health.lock;
  const healthy =
    o.health.status === 200 &&
    lock?.status === 'up' &&
    lock.instances === instances &&
    lock.up === instances;
  const healthLine = lock
    ? `answered ${o.health.status}, distributedLock ${lock.status}, up = ${lock.up} of ${lock.instances} instance(s) (quorum ${lock.quorum})`
    : `answered ${o.health.status} without distributedLock details`;

  const name = HANDLERS.report;
  const reportSamples = o.metrics.samples.filter(
    (s) => s.name.startsWith('lock_acquire_duration_') && s.labels.lock_name === name,
  ).length;
  const acquired = between(o, 'lock_acquire_duration_count', 'acquired', `${name}|acquired`);
  const skipped = between(o, 'lock_skipped_total', 'tick-claimed', `${name}|skipped:tick-claimed`);
  const scraped = `GET /metrics on ${o.replica} (one scrape, answered ${o.metrics.status})`;
  return [
    [
      healthy,
      `GET /health on live replica ${o.replica}: ${healthLine}; expected: 200, up, up = ${instances} of ${instances} (every lock instance the demo runs)`,
    ],
    [
      o.metrics.status === 200 && reportSamples > 0 && acquired.n > 0 && acquired.ok,
      `${scraped}: ${reportSamples} lock_acquire_duration samples with lock_name="${name}"; ` +
        `${acquired.line} (> 0 expected)`,
    ],
    [o.metrics.status === 200 && skipped.ok, `${scraped}, same scrape: ${skipped.line}`],
  ];
}

/**
 * The scraped value of `metric` for the report job with `lock_outcome` (histograms) or
 * `lock_reason` (counters) `outcome`, and whether it lies between the replica's count of the same
 * events (`field`) read just before and just after the scrape.
 */
function between(
  o: Observation,
  metric: 'lock_acquire_duration_count' | 'lock_skipped_total',
  outcome: string,
  field: string,
): { n: number; ok: boolean; line: string } {
  const label = metric === 'lock_skipped_total' ? 'lock_reason' : 'lock_outcome';
  const labels = { lock_name: HANDLERS.report, [label]: outcome };
  const n = sampleValue(o.metrics.samples, metric, labels);
  const before = o.eventsBefore.get(field) ?? 0;
  const after = o.eventsAfter.get(field) ?? 0;
  const selector = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  return {
    n,
    ok: before <= n && n <= after,
    line:
      `${metric}{${selector}} = ${n}, between the ${outcome} events of ${o.replica}'s report job ` +
      `counted from LockService.events just before (${before}) and just after (${after}) the scrape`,
  };
}
