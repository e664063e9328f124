/**
 * Argument parsing of the `nestjs-distributed-lock` CLI: flags may come before or after the
 * command, as `--flag value` or `--flag=value`; connection settings fall back to the environment.
 * @internal
 */

/** Which store the CLI talks to, and how. */
export type CliStore =
  | { kind: 'redis'; urls: string[] }
  | { kind: 'postgres'; url: string }
  | { kind: 'etcd'; hosts: string[] };

/** A parsed command line. */
export type CliCommand =
  | { command: 'help' }
  | {
      command: 'list';
      store: CliStore;
      keyPrefix: string;
      prefix: string;
      limit: number;
      json: boolean;
      timeout: number;
      schema?: string;
      table?: string;
    }
  | {
      command: 'release';
      store: CliStore;
      keyPrefix: string;
      key: string;
      reason?: string;
      leader: boolean;
      permit: number;
      json: boolean;
      timeout: number;
      schema?: string;
      table?: string;
    };

/** Bad arguments: the CLI prints the message and exits 2. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

const VALUE_FLAGS = new Set([
  'prefix',
  'reason',
  'redis',
  'postgres',
  'etcd',
  'key-prefix',
  'limit',
  'permit',
  'timeout',
  'schema',
  'table',
]);
const BOOLEAN_FLAGS = new Set(['json', 'help', 'leader']);
/** Flags each command accepts besides the connection ones. */
const COMMAND_FLAGS: Record<'list' | 'release', readonly string[]> = {
  list: ['prefix', 'limit', 'json'],
  release: ['reason', 'leader', 'permit', 'json'],
};
const CONNECTION_FLAGS = [
  'redis',
  'postgres',
  'etcd',
  'key-prefix',
  'timeout',
  'schema',
  'table',
  'help',
];

function split(list: string): string[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function integer(flag: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new CliUsageError(`--${flag} must be an integer from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

/** The store named by the flags, else by the environment (exactly one of them). */
function storeOf(flags: Map<string, string>, env: NodeJS.ProcessEnv): CliStore {
  const given = (['redis', 'postgres', 'etcd'] as const).filter((f) => flags.has(f));
  if (given.length > 1) {
    throw new CliUsageError(
      `give one store: ${given.map((f) => `--${f}`).join(' and ')} were both given`,
    );
  }
  let kind = given[0];
  let value = kind === undefined ? undefined : flags.get(kind);
  if (kind === undefined) {
    const fromEnv = (
      [
        ['redis', env.LOCK_REDIS_URLS],
        ['postgres', env.LOCK_DATABASE_URL],
        ['etcd', env.LOCK_ETCD_HOSTS],
      ] as const
    ).filter(([, v]) => v !== undefined && v.trim() !== '');
    if (fromEnv.length === 0) {
      throw new CliUsageError(
        'no store given: pass --redis URL[,URL...], --postgres URL or --etcd HOST[,HOST...] ' +
          '(or set LOCK_REDIS_URLS, LOCK_DATABASE_URL or LOCK_ETCD_HOSTS)',
      );
    }
    if (fromEnv.length > 1) {
      throw new CliUsageError(
        'several of LOCK_REDIS_URLS, LOCK_DATABASE_URL, LOCK_ETCD_HOSTS are set: pick one with --redis, --postgres or --etcd',
      );
    }
    [kind, value] = fromEnv[0];
  }
  const text = value ?? '';
  switch (kind) {
    case 'redis': {
      const urls = split(text);
      if (urls.length === 0) throw new CliUsageError('--redis needs at least one URL');
      for (const url of urls) {
        if (!/^rediss?:\/\//.test(url)) {
          throw new CliUsageError('--redis takes redis:// or rediss:// URLs, comma-separated');
        }
      }
      return { kind, urls };
    }
    case 'postgres':
      if (!/^postgres(ql)?:\/\//.test(text.trim())) {
        throw new CliUsageError('--postgres takes a postgres:// or postgresql:// connection URL');
      }
      return { kind, url: text.trim() };
    default: {
      const hosts = split(text);
      if (hosts.length === 0) throw new CliUsageError('--etcd needs at least one host');
      return { kind: 'etcd', hosts };
    }
  }
}

/**
 * Parses `argv` (without `node` and the script).
 * @throws CliUsageError for anything that is not a valid command line
 */
export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): CliCommand {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '-h') {
      flags.set('help', 'true');
      continue;
    }
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (BOOLEAN_FLAGS.has(name)) {
      if (eq !== -1) throw new CliUsageError(`--${name} takes no value`);
      flags.set(name, 'true');
    } else if (VALUE_FLAGS.has(name)) {
      const value = eq === -1 ? argv[(i += 1)] : arg.slice(eq + 1);
      if (value === undefined || (eq === -1 && value.startsWith('--'))) {
        throw new CliUsageError(`--${name} needs a value`);
      }
      if (flags.has(name)) throw new CliUsageError(`--${name} was given twice`);
      flags.set(name, value);
    } else {
      throw new CliUsageError(`unknown option --${name} (see --help)`);
    }
  }
  if (flags.has('help')) return { command: 'help' };
  const [command, ...rest] = positional;
  if (command === undefined)
    throw new CliUsageError('no command: use list or release KEY (see --help)');
  if (command !== 'list' && command !== 'release') {
    throw new CliUsageError(`unknown command "${command}": use list or release KEY (see --help)`);
  }
  for (const name of flags.keys()) {
    if (!CONNECTION_FLAGS.includes(name) && !COMMAND_FLAGS[command].includes(name)) {
      throw new CliUsageError(`--${name} does not apply to ${command}`);
    }
  }
  const store = storeOf(flags, env);
  const common = {
    store,
    keyPrefix: flags.get('key-prefix') ?? 'lock:',
    json: flags.has('json'),
    timeout: flags.has('timeout') ? integer('timeout', flags.get('timeout')!, 100, 60_000) : 5_000,
    ...(flags.has('schema') ? { schema: flags.get('schema') } : {}),
    ...(flags.has('table') ? { table: flags.get('table') } : {}),
  };
  if (command === 'list') {
    if (rest.length > 0) throw new CliUsageError(`list takes no argument, got "${rest[0]}"`);
    return {
      command,
      ...common,
      prefix: flags.get('prefix') ?? '',
      limit: flags.has('limit') ? integer('limit', flags.get('limit')!, 1, 100_000) : 1_000,
    };
  }
  if (rest.length !== 1 || rest[0] === '') {
    throw new CliUsageError('release takes exactly one KEY (see --help)');
  }
  return {
    command,
    ...common,
    key: rest[0],
    ...(flags.has('reason') ? { reason: flags.get('reason') } : {}),
    leader: flags.has('leader'),
    permit: flags.has('permit') ? integer('permit', flags.get('permit')!, 0, 1_000_000) : 0,
  };
}

/** `--help`. */
export const USAGE = `Usage: nestjs-distributed-lock <command> [options]

See and free the locks held by nestjs-distributed-lock in a store.

Commands:
  list                 the locks held now: key, kind, holder, token, expires in
  release KEY          force-release KEY whoever holds it; its fencing counter advances, so the
                       stale holder finds its lock lost and every later token is higher

Store (one of; or the environment variables LOCK_REDIS_URLS / LOCK_DATABASE_URL / LOCK_ETCD_HOSTS):
  --redis URL[,URL...]     the Redis instances of the app (all of them: a lock counts on a majority)
  --postgres URL           the PostgreSQL database (--schema S, --table T as the app's postgresBackend)
  --etcd HOST[,HOST...]    the etcd members
  --key-prefix P           the app's keyPrefix (Redis, etcd)            default: lock:
  --timeout MS             give up on an unreachable store after MS      default: 5000

list options:
  --prefix P               only keys starting with P (without the key prefix)
  --limit N                at most N locks                               default: 1000
  --json                   print a JSON array of HeldLock instead of a table

release options:
  --reason R               why (shown in the output)
  --leader                 free the leader election named KEY
  --permit N               free permit N of a concurrency-limited KEY
  --json                   print {"key","released"} as JSON

Exit codes: 0 done (also when KEY was not held), 1 the store could not be reached or answered,
2 bad arguments.

Examples:
  nestjs-distributed-lock list --redis redis://10.0.0.1:6379,redis://10.0.0.2:6379,redis://10.0.0.3:6379
  LOCK_DATABASE_URL=postgres://app@db/app nestjs-distributed-lock list --prefix order: --json
  nestjs-distributed-lock release order:42 --reason "INC-1234 stuck holder" --etcd http://127.0.0.1:2379
`;
