/**
 * Every user-facing message of the library in one place.
 * @internal
 */
export const Messages = {
  noConnections: 'one of `connections` or `clients` is required (a non-empty array)',
  bothConnections: '`connections` and `clients` are mutually exclusive; pass one of them',
  duplicateInstance: (a: number, b: number, runId: string) =>
    `entries ${a} and ${b} are the same Redis server (run_id ${runId}); each entry must be an independent Redis deployment`,
  evenInstances: (n: number) =>
    `${n} Redis instances configured: an even number tolerates no more failures than ${n - 1}; prefer an odd number`,
  unreachableAtBootstrap: (i: number, reason: string) =>
    `Redis entry ${i} is not reachable at startup (${reason}); locks need a majority and will fail closed until it is`,
  userClientNotFailFast: (i: number) =>
    `client ${i} has the ioredis offline queue enabled or no commandTimeout: a lock call can hang while Redis is down. ` +
    `Set enableOfflineQueue: false and commandTimeout (e.g. 500), or pass \`connections\` and let the module configure them.`,
  busy: (keys: string[]) => `lock busy: ${keys.join(', ')} is held by another owner`,
  unavailable: (keys: string[], answered: number, quorum: number, total: number) =>
    `lock unavailable: only ${answered} of ${total} Redis instances answered for ${keys.join(', ')} (a majority of ${quorum} is required)`,
  lowValidity: (keys: string[], validity: number, ttl: number) =>
    `lock unavailable: acquiring ${keys.join(', ')} took so long that only ${validity} ms of the ${ttl} ms TTL remained`,
  lost: (keys: string[], why: string) => `lock lost: ${keys.join(', ')} (${why})`,
  shuttingDown: 'the distributed lock module is shutting down; no new exclusive work starts',
  redisError: (i: number, message: string) => `Redis instance ${i}: ${message}`,
  redisRecovered: (i: number) => `Redis instance ${i} is reachable again`,
  releaseFailed: (keys: string[], message: string) =>
    `releasing ${keys.join(', ')} failed (it will expire by its TTL): ${message}`,
  extendFailed: (keys: string[], message: string) =>
    `extending ${keys.join(', ')} failed, retrying: ${message}`,
} as const;
