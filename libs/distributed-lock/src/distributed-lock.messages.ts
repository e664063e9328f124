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
  closedBeforeAnswering: (i: number) =>
    `Redis entry ${i} closed the connection before answering. If that server requires TLS, use a rediss:// URL ` +
    'or the ioredis `tls` option (with your CA in `tls.ca`); if it requires a password, give `username` / `password`',
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
  notInjected:
    '@Exclusive() needs LockService injected: the instance must be created by Nest (a provider or controller) ' +
    'in an application that imports DistributedLockModule',
  skipShutdown: (where: string) => `${where}: skipped, the application is shutting down`,
  skipTick: (where: string, key: string, at: number) =>
    `${where}: skipped, tick ${new Date(at).toISOString()} of ${key} was claimed by another replica`,
  skipBusy: (where: string, key: string) => `${where}: skipped, ${key} is held by another owner`,
  acquired: (where: string, key: string) => `${where}: acquired ${key}`,
  scheduledUnavailable: (where: string, message: string) =>
    `${where}: not run (fail closed): ${message}`,
  requestScoped: (where: string) =>
    `${where} uses @Exclusive in a request-scoped provider; @nestjs/schedule does not run handlers of such providers, and each request gets a new instance`,
  sharedKey: (key: string, where: string[]) =>
    `@Exclusive key "${key}" is shared by ${where.join(', ')}; they exclude each other. Set sharedKey: true on them if that is intended`,
  redisError: (i: number, message: string) => `Redis instance ${i}: ${message}`,
  redisRecovered: (i: number) => `Redis instance ${i} is reachable again`,
  releaseFailed: (keys: string[], message: string) =>
    `releasing ${keys.join(', ')} failed (it will expire by its TTL): ${message}`,
  extendFailed: (keys: string[], message: string) =>
    `extending ${keys.join(', ')} failed, retrying: ${message}`,
} as const;
