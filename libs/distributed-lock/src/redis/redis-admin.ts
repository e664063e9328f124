import type { Redis } from 'ioredis';
import type {
  BackendHeldKey,
  BackendHolder,
  BackendListQuery,
} from '../backend/lock-backend.interface';
import { holderOf, sinceOf } from '../backend/lock-value';
import { Messages } from '../distributed-lock.messages';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import { READ_HELD } from './lock.scripts';
import { isCluster, type LockClient } from './redis-instances';
import { fenceKeyFor } from './redis-keys';
import type { Vote } from './quorum';
import { sanitize, withTimeout } from './redis-votes';

/** Keys asked for per SCAN call: small steps, so Redis serves other clients between them. */
const SCAN_COUNT = 1_000;

/**
 * Keys read per script call: each call blocks Redis while it runs (about 1 µs per key here), so a
 * SCAN step's keys go out as several calls, sent together, with other clients' commands between.
 */
const READ_CHUNK = 200;

/** A stored lock value (`<32 hex>`, optionally `@<since>`, optionally `/<identity>`): anything else under the prefix is not ours. */
const LOCK_VALUE = /^[0-9a-f]{32}(?:[@/]|$)/;

/** What one instance holds for one key (from READ_HELD: its value, PTTL and fencing counter). @internal */
export interface HeldOn {
  readonly value: string;
  readonly pttl: number;
  readonly fence: number;
}

/** What instance `i` holds for one key. */
interface Seen extends HeldOn {
  /** The instance. */
  readonly i: number;
}

/**
 * One READ_HELD answer for one key (value, PTTL, counter), or null when the instance holds no lock
 * value there (missing, expired, or something under the prefix that is not ours).
 * @internal
 */
export function heldOn(value: unknown, pttl: unknown, fence: unknown): HeldOn | null {
  if (typeof value !== 'string' || !LOCK_VALUE.test(value)) return null;
  if (typeof pttl !== 'number' || pttl === -2) return null;
  const counter = Number(fence ?? 0);
  return {
    value,
    pttl: pttl < 0 ? Number.MAX_SAFE_INTEGER : pttl,
    fence: Number.isFinite(counter) ? counter : 0,
  };
}

/**
 * A key a majority (`held`, at least `quorum` instances with one value) holds: the holder's
 * identity and `since`, its token (the highest counter among them: what its acquisition issued) and
 * when fewer than a majority will hold it (the quorum-th longest TTL from `start`, epoch ms).
 * @internal
 */
export function majorityHold(
  held: readonly HeldOn[],
  quorum: number,
  start: number,
): BackendHolder {
  const pttls = held.map((h) => h.pttl).sort((a, b) => b - a);
  let fence = 0;
  for (const h of held) if (h.fence > fence) fence = h.fence;
  return {
    identity: holderOf(held[0].value),
    since: sinceOf(held[0].value),
    fencingToken: fence,
    expiresAt: Math.min(start + pttls[quorum - 1], Number.MAX_SAFE_INTEGER),
  };
}

/**
 * The instances seen holding one key, grouped by value: nearly always one value (the holder's on
 * every instance), so one small array per key, not maps: 100k keys stay cheap to collect.
 */
interface KeyHolders {
  readonly value: string;
  readonly holders: Seen[];
  /** Instances holding another value (a split, an expired-and-retaken key): rare. */
  others?: Map<string, Seen[]>;
}

/** Keys assembled between yields to the event loop: the lister's own app keeps serving. */
const ASSEMBLE_CHUNK = 2_000;

/** How the backend lists (its private settings, handed in). @internal */
export interface RedisListContext {
  readonly clients: readonly LockClient[];
  readonly keyPrefix: string;
  readonly cluster: boolean;
  readonly clusterPrefix: string;
  /** Bound of each round trip (a SCAN step, a pipeline of reads). */
  readonly roundTripMs: number;
}

/** `*`, `?`, `[`, `]` and `\` stand for themselves in a SCAN MATCH pattern. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/**
 * The keys held by a majority of instances under `keyPrefix + query.prefix`: every instance is
 * walked with SCAN (never KEYS: each step is O(SCAN_COUNT), so Redis keeps serving locks between
 * them) and each step's keys are read in one pipeline (GET, PTTL, the fencing counter). A key is
 * listed when a majority holds the same value; its expiry is when fewer than a majority will hold
 * it. The walk stops once `limit` keys are confirmed.
 * @throws LockUnavailableError when fewer than a majority of instances could be walked
 * @internal
 */
export async function listRedis(
  ctx: RedisListContext,
  query: BackendListQuery,
): Promise<BackendHeldKey[]> {
  const total = ctx.clients.length;
  const quorum = Math.floor(total / 2) + 1;
  /** full key → the instances holding it, by value. */
  const seen = new Map<string, KeyHolders>();
  /** Keys a majority holds with one value → those holders. */
  const confirmed = new Map<string, Seen[]>();
  let stop = false;
  const match = globEscape(ctx.clusterPrefix + ctx.keyPrefix + query.prefix) + '*';

  const note = (full: string, s: Seen) => {
    const known = seen.get(full);
    let holders: Seen[];
    if (known === undefined) {
      seen.set(full, { value: s.value, holders: (holders = [s]) });
    } else if (known.value === s.value) {
      holders = known.holders;
      // SCAN may return a key twice: an instance counts once.
      if (holders.some((h) => h.i === s.i)) return;
      holders.push(s);
    } else {
      known.others ??= new Map<string, Seen[]>();
      holders = known.others.get(s.value) ?? [];
      if (holders.length === 0) known.others.set(s.value, holders);
      if (holders.some((h) => h.i === s.i)) return;
      holders.push(s);
    }
    if (holders.length >= quorum && !confirmed.has(full)) {
      confirmed.set(full, holders);
      if (confirmed.size >= query.limit) stop = true;
    }
  };

  const walk = async (i: number, node: Redis): Promise<void> => {
    let cursor = '0';
    do {
      const [next, keys] = await withTimeout(
        node.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT),
        ctx.roundTripMs,
      );
      cursor = next;
      if (keys.length > 0) await readBatch(i, node, keys);
    } while (cursor !== '0' && !stop);
  };

  const record = (i: number, real: string, value: unknown, pttl: unknown, fence: unknown) => {
    const held = heldOn(value, pttl, fence);
    if (held) note(real.slice(ctx.clusterPrefix.length), { i, ...held });
  };

  /** Outside a Cluster: one script call per SCAN step (a pipeline of 3 commands per key costs 5-10x the client CPU). */
  const readScripted = async (i: number, node: Redis, scanned: string[]): Promise<void> => {
    const chunks: string[][] = [];
    for (let from = 0; from < scanned.length; from += READ_CHUNK) {
      chunks.push(scanned.slice(from, from + READ_CHUNK));
    }
    const read = async (chunk: string[]): Promise<void> => {
      const keys: string[] = [];
      for (const full of chunk) keys.push(full, fenceKeyFor(full, false, 'key'));
      const reply = ((await node.eval(READ_HELD, keys.length, ...keys)) as unknown[] | null) ?? [];
      chunk.forEach((full, k) => record(i, full, reply[3 * k], reply[3 * k + 1], reply[3 * k + 2]));
    };
    await withTimeout(Promise.all(chunks.map(read)), ctx.roundTripMs);
  };

  const readBatch = async (i: number, node: Redis, scanned: string[]): Promise<void> => {
    if (!ctx.cluster) return readScripted(i, node, scanned);
    // On a Cluster one script may not touch keys of several slots: a pipeline, per key.
    const pipeline = node.pipeline();
    const fences: Array<string | undefined> = [];
    for (const real of scanned) {
      const full = real.slice(ctx.clusterPrefix.length);
      let fence: string | undefined;
      try {
        fence = ctx.clusterPrefix + fenceKeyFor(full, ctx.cluster, 'key', ctx.clusterPrefix);
      } catch {
        fence = undefined; // braces no counter can share a slot with: a key we never lock
      }
      fences.push(fence);
      pipeline.get(real).pttl(real);
      if (fence !== undefined) pipeline.get(fence);
    }
    const replies = (await withTimeout(pipeline.exec(), ctx.roundTripMs)) ?? [];
    let r = 0;
    scanned.forEach((real, k) => {
      const [valueError, value] = replies[r++] ?? [];
      const [, pttl] = replies[r++] ?? [];
      let fence: unknown = null;
      if (fences[k] !== undefined) fence = (replies[r++] ?? [])[1];
      if (!valueError) record(i, real, value, pttl, fence);
    });
  };

  const start = Date.now();
  let firstError = '';
  const outcomes = await Promise.all(
    ctx.clients.map(async (client, i) => {
      try {
        const nodes = isCluster(client) ? client.nodes('master') : [client];
        await Promise.all(nodes.map((node) => walk(i, node)));
        return true;
      } catch (error) {
        firstError ||= error instanceof Error ? error.message : String(error);
        return false;
      }
    }),
  );
  const answered = outcomes.filter(Boolean).length;
  if (answered < quorum && !stop) {
    throw new LockUnavailableError(
      [query.prefix],
      Messages.redisListUnavailable(answered, quorum, total, firstError),
      { total, quorum, granted: answered, held: 0, failed: total - answered },
    );
  }

  const found: BackendHeldKey[] = [];
  for (const [full, held] of confirmed) {
    if (found.length >= query.limit) break;
    const { identity, fencingToken, expiresAt } = majorityHold(held, quorum, start);
    found.push({ key: full.slice(ctx.keyPrefix.length), identity, fencingToken, expiresAt });
    if (found.length % ASSEMBLE_CHUNK === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  return found;
}

/**
 * The outcome of a force release sent to every instance (FORCE_RELEASE's reply: 1 when it held
 * the key, 0 when not).
 * @returns true when some instance held the key
 * @throws LockUnavailableError when fewer than a majority answered
 * @internal
 */
export function forcedOn(key: string, votes: readonly Vote[]): boolean {
  const total = votes.length;
  const answered = votes.filter((v) => v.kind === 'for');
  const quorum = Math.floor(total / 2) + 1;
  if (answered.length < quorum) {
    const failed = votes.find((v) => v.kind === 'failed');
    throw new LockUnavailableError(
      [key],
      Messages.forceReleaseUnavailable(key, answered.length, quorum, total),
      { total, quorum, granted: answered.length, held: 0, failed: total - answered.length },
      sanitize(failed?.kind === 'failed' ? failed.error : undefined),
    );
  }
  return answered.some((v) => v.kind === 'for' && v.value === 1);
}
