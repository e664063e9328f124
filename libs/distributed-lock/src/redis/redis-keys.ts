import { Messages } from '../distributed-lock.messages';
import { argumentError } from '../options/validators';

/** Fencing counters live under this prefix, apart from every lock key. @internal */
export const FENCE_NAMESPACE = 'fence:';

/**
 * The part of `key` Redis Cluster hashes to pick a slot: the text between the first `{` and the
 * first `}` after it when that is not empty, else `undefined` (the whole key is hashed).
 * @internal
 */
export function hashTag(key: string): string | undefined {
  const open = key.indexOf('{');
  if (open === -1) return undefined;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return undefined;
  return key.slice(open + 1, close);
}

/**
 * The Redis key of the fencing counter of lock key `full`. Outside a Cluster it is `fence:<full>`
 * (the layout since 0.1). On a Cluster the counter must share the lock key's slot: a key with a hash
 * tag keeps it (`fence:lock:{t}:x`), a key without one is hashed whole, so the counter wraps it in a
 * tag (`fence:{lock:x}`); a key with braces but no usable tag cannot be wrapped and is refused.
 * `clientPrefix` is the Cluster client's own ioredis `keyPrefix`, which it adds to both keys.
 * @throws InvalidLockArgumentError naming `field`
 * @internal
 */
export function fenceKeyFor(
  full: string,
  cluster: boolean,
  field: string,
  clientPrefix = '',
): string {
  // ioredis puts its own `keyPrefix` in front of both keys: Redis hashes `clientPrefix + key`.
  const real = clientPrefix + full;
  if (!cluster || hashTag(real) !== undefined) return FENCE_NAMESPACE + full;
  if (real.includes('{') || real.includes('}')) {
    throw argumentError(field, Messages.unusableBraces(full));
  }
  return `${FENCE_NAMESPACE}{${real}}`;
}

/**
 * On a Cluster one script may only touch one slot: the keys of a multi-key lock must share a hash
 * tag (`{order-1}:a`, `{order-1}:b`). Two untagged keys might share a slot by chance; we refuse them
 * anyway, so that whether a key list works never depends on CRC16 luck.
 * @throws InvalidLockArgumentError
 * @internal
 */
export function checkSameSlot(fullKeys: string[]): void {
  if (fullKeys.length < 2) return;
  const tags = fullKeys.map(hashTag);
  if (tags[0] === undefined || tags.some((t) => t !== tags[0])) {
    throw argumentError('key', Messages.crossSlot(fullKeys));
  }
}
