/** Injection token of the resolved module options. */
export const DISTRIBUTED_LOCK_OPTIONS = 'DISTRIBUTED_LOCK:MODULE_OPTIONS';

/** Metadata key under which `@Exclusive()` stores its options on the wrapped method. */
export const EXCLUSIVE_METADATA = 'distributed-lock:exclusive';

/** Longest lock key accepted (characters, before the key prefix is applied). */
export const MAX_KEY_LENGTH = 1024;

/** The largest delay Node's `setTimeout` can hold; larger TTLs would fire at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** Smallest gap between `extendThreshold` and `ttl`, so an extension has time to run. */
export const MIN_EXTEND_WINDOW_MS = 100;

/** The name of the store configured by `connections` / `clients` / `backend` (others are `stores`). */
export const DEFAULT_STORE = 'default';

/** Metadata key under which `@Leader()` stores its options on the method. */
export const LEADER_METADATA = 'distributed-lock:leader';

/** Metadata key (on the class) of `@Leader()` misuses found when it was applied. */
export const LEADER_MISUSE_METADATA = 'distributed-lock:leader-misuse';
