import type { BackendHolder } from '../backend/lock-backend.interface';
import { Messages } from '../distributed-lock.messages';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import { READ_HELD } from './lock.scripts';
import { heldOn, majorityHold, type HeldOn } from './redis-admin';
import type { LockClient } from './redis-instances';
import { withTimeout } from './redis-votes';

/** How the backend reads one key's holder (its private settings, handed in). @internal */
export interface RedisInspectContext {
  readonly clients: readonly LockClient[];
  /** Bound of each instance's answer. */
  readonly timeoutMs: number;
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
    ctx.clients.map(async (client): Promise<HeldOn | null | undefined> => {
      try {
        const reply = (await withTimeout(
          client.eval(READ_HELD, 2, redisKey, fenceKey) as Promise<unknown[] | null>,
          ctx.timeoutMs,
        )) ?? [null, -2, null];
        return heldOn(reply[0], reply[1], reply[2]);
      } catch (error) {
        firstError ||= error instanceof Error ? error.message : String(error);
        return undefined;
      }
    }),
  );
  const unanswered = answers.filter((a) => a === undefined).length;
  const byValue = new Map<string, HeldOn[]>();
  for (const seen of answers) {
    if (!seen) continue;
    const holders = byValue.get(seen.value) ?? [];
    holders.push(seen);
    byValue.set(seen.value, holders);
  }
  let best: HeldOn[] = [];
  for (const holders of byValue.values()) if (holders.length > best.length) best = holders;
  if (best.length >= quorum) return majorityHold(best, quorum, start);
  if (best.length + unanswered < quorum) return null;
  const answered = total - unanswered;
  throw new LockUnavailableError(
    [key],
    Messages.redisInspectUnavailable(key, answered, quorum, total, firstError),
    { total, quorum, granted: answered, held: 0, failed: unanswered },
  );
}
