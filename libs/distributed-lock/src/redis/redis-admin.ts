import type { Redis } from 'ioredis';
import type { BackendHeldKey, BackendListQuery } from '../backend/lock-backend.interface';
import { holderOf } from '../backend/lock-value';
import { Messages } from '../distributed-lock.messages';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import { READ_HELD } from './lock.scripts';
import { isCluster, type LockClient } from './redis-instances';
import { fenceKeyFor } from './redis-keys';
import type { Vote } from './quorum';
import { sanitize } from './redis-votes';

/** Keys asked for per SCAN call: small steps, so Redis serves other clients between them. */
const SCAN_COUNT = 1_000;

/**
 * Keys read per script call: each call blocks Redis while it runs (about 1 µs per key here), so a
 * SCAN step's keys go out as several calls, sent together, with other clients' commands between.
 */
const READ_CHUNK = 200;

/** A stored lock value (`<32 hex>` or `<32 hex>/<identity>`): anything else under the prefix is not ours. */
const LOCK_VALUE = /^[0-9a-f]{32}(?:\/|$)/;

/** What one instance holds for one key. */
interface Seen {
  readonly value: string;
  readonly pttl: number;
  readonly fence: number;
}

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

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
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
  /** full key → value → instances holding it (index → what it holds). */
  const seen = new Map<string, Map<string, Map<number, Seen>>>();
  const confirmed = new Set<string>();
  let stop = false;
  const match = globEscape(ctx.clusterPrefix + ctx.keyPrefix + query.prefix) + '*';

  const note = (i: number, full: string, s: Seen) => {
    let values = seen.get(full);
    if (!values) seen.set(full, (values = new Map<string, Map<number, Seen>>()));
    let holders = values.get(s.value);
    if (!holders) values.set(s.value, (holders = new Map<number, Seen>()));
    holders.set(i, s);
    if (holders.size >= quorum && !confirmed.has(full)) {
      confirmed.add(full);
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
    if (typeof value !== 'string' || !LOCK_VALUE.test(value)) return;
    if (typeof pttl !== 'number' || pttl === -2) return;
    const counter = Number(fence ?? 0);
    note(i, real.slice(ctx.clusterPrefix.length), {
      value,
      pttl: pttl < 0 ? Number.MAX_SAFE_INTEGER : pttl,
      fence: Number.isFinite(counter) ? counter : 0,
    });
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
  for (const full of confirmed) {
    if (found.length >= query.limit) break;
    for (const [value, holders] of seen.get(full)!) {
      if (holders.size < quorum) continue;
      const held = [...holders.values()];
      // Held by a majority until the quorum-th longest TTL runs out.
      const pttls = held.map((h) => h.pttl).sort((a, b) => b - a);
      found.push({
        key: full.slice(ctx.keyPrefix.length),
        identity: holderOf(value),
        fencingToken: Math.max(...held.map((h) => h.fence)),
        expiresAt: Math.min(start + pttls[quorum - 1], Number.MAX_SAFE_INTEGER),
      });
      break;
    }
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
