import type { BackendHolder } from '../backend/lock-backend.interface';
import { holderOf, sinceOf } from '../backend/lock-value';
import { Messages } from '../distributed-lock.messages';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import { READ_HELD } from './lock.scripts';
import type { LockClient } from './redis-instances';

/** How the backend reads one key's holder (its private settings, handed in). @internal */
export interface RedisInspectContext {
  readonly clients: readonly LockClient[];
  /** Bound of each instance's answer. */
  readonly timeoutMs: number;
}

/** What one instance holds for the key: its value, PTTL and fencing counter (null: nothing). */
interface Seen {
  readonly value: string;
  readonly pttl: number;
  readonly fence: number;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Who holds `redisKey` on a majority of instances, read without taking it: one READ_HELD script
 * per instance (value, PTTL and fencing counter in one call, so one round trip), all sent at once.
 * The holder is the value a majority holds; its token is the highest counter among the instances
 * holding it (what its acquisition issued, see lock.scripts.ts), and it is held until fewer than a
 * majority will still hold it. `null` once no value can have a majority, even counting the
 * instances that did not answer.
 * @throws LockUnavailableError when the answers leave it undecided (no majority answered)
 * @internal
 */
export async function inspectRedis(
  ctx: RedisInspectContext,
  key: string,
  redisKey: string,
  fenceKey: string,
): Promise<BackendHolder | null> {
  const total = ctx.clients.length;
  const quorum = Math.floor(total / 2) + 1;
  const start = Date.now();
  let firstError = '';
  const answers = await Promise.all(
    ctx.clients.map(async (client): Promise<Seen | null | undefined> => {
      try {
        const reply = (await withTimeout(
          client.eval(READ_HELD, 2, redisKey, fenceKey) as Promise<unknown[] | null>,
          ctx.timeoutMs,
        )) ?? [null, -2, null];
        const [value, pttl, fence] = reply;
        if (typeof value !== 'string' || typeof pttl !== 'number' || pttl === -2) return null;
        const counter = Number(fence ?? 0);
        return {
          value,
          pttl: pttl < 0 ? Number.MAX_SAFE_INTEGER : pttl,
          fence: Number.isFinite(counter) ? counter : 0,
        };
      } catch (error) {
        firstError ||= error instanceof Error ? error.message : String(error);
        return undefined;
      }
    }),
  );
  const unanswered = answers.filter((a) => a === undefined).length;
  const byValue = new Map<string, Seen[]>();
  for (const seen of answers) {
    if (!seen) continue;
    const holders = byValue.get(seen.value) ?? [];
    holders.push(seen);
    byValue.set(seen.value, holders);
  }
  let best: Seen[] = [];
  for (const holders of byValue.values()) if (holders.length > best.length) best = holders;
  if (best.length >= quorum) {
    const pttls = best.map((h) => h.pttl).sort((a, b) => b - a);
    return {
      identity: holderOf(best[0].value),
      since: sinceOf(best[0].value),
      fencingToken: Math.max(...best.map((h) => h.fence)),
      expiresAt: Math.min(start + pttls[quorum - 1], Number.MAX_SAFE_INTEGER),
    };
  }
  if (best.length + unanswered < quorum) return null;
  const answered = total - unanswered;
  throw new LockUnavailableError(
    [key],
    Messages.redisInspectUnavailable(key, answered, quorum, total, firstError),
    { total, quorum, granted: answered, held: 0, failed: unanswered },
  );
}
