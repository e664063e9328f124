import { CliUsageError, parseArgs } from './cli-args';
import { expiresIn, heldTable, redact } from './cli-output';

describe('CLI arguments', () => {
  const env = {};
  it('takes flags before or after the command, as --flag value or --flag=value', () => {
    const a = parseArgs(
      ['--json', 'list', '--prefix=order:', '--redis', 'redis://a:1,redis://b:2'],
      env,
    );
    const b = parseArgs(
      ['list', '--redis=redis://a:1,redis://b:2', '--prefix', 'order:', '--json'],
      env,
    );
    expect(a).toEqual(b);
    expect(a).toMatchObject({
      command: 'list',
      prefix: 'order:',
      json: true,
      keyPrefix: 'lock:',
      limit: 1_000,
      store: { kind: 'redis', urls: ['redis://a:1', 'redis://b:2'] },
    });
  });

  it('reads the store from the environment when no flag names one, and refuses two', () => {
    expect(parseArgs(['list'], { LOCK_DATABASE_URL: 'postgres://db/app' })).toMatchObject({
      store: { kind: 'postgres', url: 'postgres://db/app' },
    });
    expect(
      parseArgs(['release', 'k', '--leader'], { LOCK_ETCD_HOSTS: 'h1:2379,h2:2379' }),
    ).toMatchObject({
      command: 'release',
      key: 'k',
      leader: true,
      store: { kind: 'etcd', hosts: ['h1:2379', 'h2:2379'] },
    });
    expect(() =>
      parseArgs(['list'], { LOCK_DATABASE_URL: 'postgres://db/app', LOCK_REDIS_URLS: 'redis://x' }),
    ).toThrow(CliUsageError);
    expect(
      parseArgs(['list', '--redis', 'redis://x'], { LOCK_DATABASE_URL: 'postgres://db' }),
    ).toMatchObject({
      store: { kind: 'redis' },
    });
  });

  it.each([
    [[]],
    [['list', '--limit', '-1', '--redis', 'redis://x']],
    [['list', '--limit']],
    [['release', '--redis', 'redis://x']],
    [['release', 'k', '--prefix', 'p', '--redis', 'redis://x']],
    [['list', '--json=yes', '--redis', 'redis://x']],
    [['list', '--redis', 'redis://x', '--redis', 'redis://y']],
  ])('refuses %j', (argv) => {
    expect(() => parseArgs(argv, env)).toThrow(CliUsageError);
  });
});

describe('CLI output', () => {
  it('removes passwords from URLs and given secrets', () => {
    expect(redact('cannot reach redis://admin:hunter2@10.0.0.1:6379/0')).toBe(
      'cannot reach redis://***@10.0.0.1:6379/0',
    );
    expect(redact('host=db password=hunter2 user=x')).toBe('host=db password=*** user=x');
    expect(redact('auth failed for hunter2', ['hunter2'])).toBe('auth failed for ***');
  });

  it('formats expiry and the table', () => {
    expect(expiresIn(4_200)).toBe('4.2s');
    expect(expiresIn(123_000)).toBe('2m03s');
    expect(expiresIn(-5)).toBe('expired');
    const table = heldTable(
      [
        {
          key: 'order:42',
          store: 'default',
          kind: 'lock',
          identity: 'web-1',
          fencingToken: 7,
          expiresAt: 10_000,
        },
        {
          key: 'export',
          store: 'default',
          kind: 'lock',
          identity: '',
          fencingToken: 9,
          expiresAt: 5_000,
          permit: 2,
        },
      ],
      1_000,
    );
    expect(table.split('\n')[0]).toMatch(/^KEY\s+KIND\s+HOLDER\s+TOKEN\s+EXPIRES IN$/);
    expect(table).toMatch(/order:42\s+lock\s+web-1\s+7\s+9\.0s/);
    expect(table).toMatch(/export\s+lock \(permit 2\)\s+-\s+9\s+4\.0s/);
    expect(heldTable([], 0)).toBe('no locks held\n');
  });
});
