/**
 * How the library names the keys it stores beside plain locks, in one place: a backend's `list`
 * (for `LockAdmin` and the CLI) reads a stored key back into what it is with {@link describeKey}.
 * All of them live in the user's key space (after `keyPrefix`), so a user key that happens to end
 * like one of these suffixes is listed as that kind; the README says so.
 * @internal
 */

/** What a stored key is. */
export type HeldKind = 'lock' | 'leader' | 'tick-claim';

const TICK = ':tick:';
const LEADER = ':leader';
const PERMIT = ':permit:';

/** The claim of one scheduled tick of `key` (an `@Cron` / `@Interval` slot), by its fire time. */
export function tickClaimKey(key: string, at: number): string {
  return `${key}${TICK}${at}`;
}

/** The key a leader election named `name` is held on. */
export function leaderKey(name: string): string {
  return `${name}${LEADER}`;
}

/**
 * The key of permit `permit` (0 … limit − 1) of a concurrency-limited `key`. Permit 0 is the key
 * itself, so a mutex (`limit: 1`) and limited callers of one key exclude each other on it.
 */
export function permitKey(key: string, permit: number): string {
  return permit === 0 ? key : `${key}${PERMIT}${permit}`;
}

/** A stored key read back: the user's key, its kind, and the permit where it is one (> 0). */
export interface DescribedKey {
  readonly key: string;
  readonly kind: HeldKind;
  readonly permit?: number;
}

/** Reads a key named by this module (without `keyPrefix`) back into what it is. */
export function describeKey(stored: string): DescribedKey {
  const tick = /^(.+):tick:\d+$/.exec(stored);
  if (tick) return { key: tick[1], kind: 'tick-claim' };
  if (stored.length > LEADER.length && stored.endsWith(LEADER)) {
    return { key: stored.slice(0, -LEADER.length), kind: 'leader' };
  }
  const permit = /^(.+):permit:([1-9]\d*)$/.exec(stored);
  if (permit) return { key: permit[1], kind: 'lock', permit: Number(permit[2]) };
  return { key: stored, kind: 'lock' };
}
