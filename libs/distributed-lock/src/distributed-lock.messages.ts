/**
 * The library's log lines and its error messages that are sentences or are built from several
 * values, in one place. Short field checks (`keyPrefix: must be a string`, `key: must not be an
 * empty list`) keep their text beside the check that throws it, with the field named by the typed
 * error; the reasons a lock was lost are in lock-handle.ts (`WHY`), next to the states they name.
 * @internal
 */
export const Messages = {
  noConnections: 'one of `connections` or `clients` (a non-empty array) or `backend` is required',
  bothConnections: (given: readonly string[]) =>
    `${given.map((g) => `\`${g}\``).join(' and ')} are mutually exclusive; pass one of \`connections\`, \`clients\`, \`backend\``,
  notABackend: (missing: readonly string[]) =>
    `must be a LockBackend (an object with ${missing.length ? `the methods ${missing.join(', ')}` : 'the LockBackend methods'})`,
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
  badLimit: (got: unknown, max: number) =>
    `must be an integer from 1 to ${max} (how many holders of the key may hold it at once), got ${typeof got === 'number' || typeof got === 'string' ? JSON.stringify(got) : got === null ? 'null' : typeof got}`,
  limitManyKeys: (limit: number) =>
    `limit ${limit} applies to one key; several keys are locked together as a mutex (limit 1)`,
  limitUnsupported: (store: string, name: string) =>
    `the store '${store}' (${name} backend) does not support limit > 1; use limit 1 or a backend that does (Redis, PostgreSQL, etcd, in-memory)`,
  limitOnSchedule:
    'does not apply to @Cron / @Interval / @Timeout handlers: a tick runs once across replicas (remove limit)',
  busy: (keys: string[]) => `lock busy: ${keys.join(', ')} is held by another owner`,
  unavailable: (
    keys: string[],
    answered: number,
    quorum: number,
    total: number,
    noun: string,
    failed = total - answered,
  ) =>
    `lock unavailable: ${failed} of ${total} ${noun} failed or did not answer in time for ${keys.join(', ')}, ` +
    `${answered} answered (a majority of ${quorum} is required)`,
  simulatedOutage: (keys: string[]) =>
    `lock unavailable: the in-memory lock store is down for ${keys.join(', ')} (LockTestingController.setUnavailable(true))`,
  heldHere: (key: string) =>
    `lock busy: ${key} is already held; LockTestingController.holdElsewhere cannot give it to a second owner (expire(key) first)`,
  pgUnavailable: (keys: string[], reason: string) =>
    `lock unavailable: PostgreSQL did not decide on ${keys.join(', ')} (${reason})`,
  pgNoAnswer: (ms: number) => `no answer within ${ms} ms`,
  pgMissingTable: (table: string) =>
    `table ${table} does not exist; run the SQL of postgresMigrationSql() or set createTable: true`,
  pgKey: (what: string) => `must not contain ${what} (PostgreSQL cannot store it as a key)`,
  etcdUnavailable: (keys: string[], reason: string) =>
    `lock unavailable: etcd did not decide on ${keys.join(', ')} (${reason})`,
  etcdNoAnswer: (ms: number) => `no answer within ${ms} ms`,
  etcdClusterChanged: (seen: string, now: string) =>
    `the etcd cluster changed under the lock backend (cluster ID ${seen}, now ${now}): its revisions ` +
    'are no longer comparable with the fencing tokens issued before, so every lock call fails closed. ' +
    'Restart the application once the cluster is the intended one',
  etcdRevisionBackwards: (highest: number, now: number) =>
    `the etcd revision went backwards (${now} after ${highest} was seen; data wiped or restored from ` +
    'a snapshot): fencing tokens would repeat, so every lock call fails closed. Restart the application ' +
    'once the cluster is the intended one',
  lowValidity: (keys: string[], validity: number, ttl: number) =>
    `lock unavailable: acquiring ${keys.join(', ')} took so long that only ${validity} ms of the ${ttl} ms TTL remained`,
  lost: (keys: string[], why: string) => `lock lost: ${keys.join(', ')} (${why})`,
  lostLog: (key: string, reason: string, handler?: string) =>
    `${handler ? `${handler}: ` : ''}lock ${key} lost (${reason}); its signal was aborted`,
  ioredisMissing:
    'the Redis backend needs the optional peer ioredis: npm install ioredis (or lock in another ' +
    'store: backend: postgresBackend(...) from nestjs-distributed-lock/postgres)',
  badIdentity: (got: unknown, max: number) =>
    `must be a non-empty string of at most ${max} characters without control characters (who holds a lock, e.g. 'billing-7f9c'), got ${typeof got === 'string' ? JSON.stringify(got.length > 40 ? got.slice(0, 40) + '…' : got) : got === null ? 'null' : typeof got}`,
  storesShape: 'must be an object of named stores, e.g. { db: postgresBackend({ ... }) }',
  storeNameTaken: (name: string) =>
    name === ''
      ? 'a store needs a non-empty name'
      : "'default' names the store of connections / clients / backend; give this store another name",
  unknownStore: (name: unknown, known: string[]) =>
    `no store is named ${JSON.stringify(name)}; configured: ${known.map((k) => `'${k}'`).join(', ')}`,
  ttlTooShort: (ttl: number, min: number) =>
    `${ttl} ms can never be granted: clock drift and the minimum validity take all of it; ` +
    `use at least ${min} ms`,
  lateExtension: (validity: number, ttl: number) =>
    `the extension came back with only ${validity} ms of the ${ttl} ms TTL left`,
  fenceNamespace: (full: string) =>
    `"${full}" would share the Redis namespace "fence:" of the fencing counters; pick another key or a keyPrefix that does not start it`,
  unusableBraces: (full: string) =>
    `"${full}" has braces but no Redis Cluster hash tag; on a Cluster use a non-empty {hash tag} (e.g. "{tenant}:job") or no braces at all`,
  crossSlot: (fullKeys: string[]) =>
    `the keys ${fullKeys.join(', ')} are in different Redis Cluster slots; a multi-key lock on a Cluster needs one shared {hash tag} in every key, e.g. "{order-1}:a" and "{order-1}:b"`,
  evictionPolicy: (i: number, policy: string) =>
    `Redis entry ${i} has maxmemory-policy ${policy}: under memory pressure it may evict locks or fencing counters. Set maxmemory-policy noeviction on lock instances`,
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
  metricNameFailed: (what: string) =>
    `metricName ${what} for a lock key; using the key up to its first ":" as lock.name (reported once)`,
  openTelemetryFailed: (message: string) =>
    `OpenTelemetry recording failed; lock calls are unaffected (reported once): ${message}`,
  healthDown: (up: number, instances: number, quorum: number) =>
    `only ${up} of ${instances} lock instances answered (a majority of ${quorum} is required)`,
  openTelemetryUnloadable: (message: string) =>
    `@opentelemetry/api is installed but could not be loaded; recording nothing: ${message}`,
  forceReleasedLog: (key: string, store: string, reason: string | undefined) =>
    `${key} (store ${store}) was force-released${reason ? `: ${reason}` : ''}; its holder finds it lost on its next extend or release`,
  adminUnsupported: (store: string, backend: string, method: string) =>
    `store "${store}" (${backend}) does not implement ${method}(); LockAdmin needs a backend with list() and forceRelease() (Redis, PostgreSQL, etcd, the in-memory kit)`,
  adminLimit: (max: number, value: string) => `must be an integer from 1 to ${max}, got ${value}`,
  adminPrefix: (value: string) => `must be a string (may be empty), got ${value}`,
  adminReason: (value: string) => `must be a string of at most 500 characters, got ${value}`,
  adminPermit: (value: string) => `must be an integer of at least 0, got ${value}`,
  adminKind: (value: string) => `must be 'lock' or 'leader', got ${value}`,
  redisListUnavailable: (answered: number, quorum: number, total: number, reason: string) =>
    `listing held locks needs a majority of Redis instances: ${answered} of ${total} answered (${quorum} required)${reason ? `; first error: ${reason}` : ''}`,
  forceReleaseUnavailable: (key: string, answered: number, quorum: number, total: number) =>
    `force-releasing ${key} needs a majority of Redis instances: ${answered} of ${total} answered (${quorum} required)`,
  schedulerMissing:
    'ExclusiveScheduler needs @nestjs/schedule installed and ScheduleModule.forRoot() imported in the application',
  schedulerName: (value: string) => `must be a non-empty string, got ${value}`,
  schedulerDuplicate: (kind: string, name: string) =>
    `a ${kind} named "${name}" is already registered in SchedulerRegistry; pick another name or delete it first`,
  schedulerHandler: (value: string) => `must be a function (the job), got ${value}`,
  schedulerMs: (value: string) => `must be an integer from 1 to 2147483647 (ms), got ${value}`,
  schedulerCron: (value: string, reason: string) =>
    `must be a valid cron expression (e.g. '*/5 * * * * *'), got ${value}: ${reason}`,
  schedulerTimeZone: (value: string) =>
    `must be an IANA time zone name (e.g. 'Europe/Berlin'), got ${value}`,
  jobFailed: (name: string, message: string) => `job ${name} failed: ${message}`,
  redisInspectUnavailable: (
    key: string,
    answered: number,
    quorum: number,
    total: number,
    reason: string,
  ) =>
    `reading who holds ${key} needs a majority of Redis instances: ${answered} of ${total} answered (${quorum} required)${reason ? `; first error: ${reason}` : ''}`,
  leaderName: (value: string) =>
    `must be a non-empty string (the leader election's name), got ${value}`,
  leaderTwice: '@Leader() may be applied once per method',
  leaderMethodsOnly: '@Leader() applies to methods only',
  leaderUnsupported: (store: string, backend: string) =>
    `store "${store}" (${backend}) cannot tell who leads: its backend has no inspect(); the Redis, PostgreSQL, etcd and in-memory backends have it`,
  leaderTermUnsafe: (name: string, term: string) =>
    `leader election ${name}: the store issued term ${term}, beyond 2^53 (not exact as a JS number); refusing the leadership`,
  leaderFailed: (handler: string, message: string) =>
    `@Leader ${handler} failed: ${message}; resigned, campaigning again after a pause`,
  leaderReturned: (handler: string) =>
    `@Leader ${handler} returned; resigned, campaigning again after a pause`,
  leaderElected: (handler: string, name: string, term: number) =>
    `${handler} elected leader of ${name} (term ${term})`,
  leaderSteppedDown: (name: string, term: number, reason: string) =>
    `stepped down as leader of ${name} (term ${term}): ${reason}`,
  leaderStoreDown: (handler: string, message: string) =>
    `@Leader ${handler}: the store cannot decide (${message}); campaigning with backoff, logged again once it recovers`,
  leaderStoreBack: (handler: string, failures: number) =>
    `@Leader ${handler}: the store answers again after ${failures} failed attempts; campaigning`,
} as const;
