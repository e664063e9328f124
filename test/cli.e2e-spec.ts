import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Test, type TestingModule } from '@nestjs/testing';
import {
  DistributedLockModule,
  LockService,
  type DistributedLockModuleOptions,
  type HeldLock,
  type Lock,
} from '@app/distributed-lock';
import { etcdBackend } from '@app/distributed-lock/etcd';
import { postgresBackend } from '@app/distributed-lock/postgres';
import { EtcdCluster } from './support/etcd-cluster';
import { aborted } from './support/lock-app';
import { PostgresServer } from './support/postgres-server';
import { RedisFleet } from './support/redis-fleet';

/**
 * The `nestjs-distributed-lock` CLI as an operator runs it: a child process against real
 * redis-server / PostgreSQL / etcd processes while a Nest app holds locks there.
 */
const root = join(__dirname, '..');
/** The library compiled once (as `npm run build:lib` does, without declarations), so runs start fast. */
const built = join(root, 'dist/cli-e2e');
const main = join(built, 'cli/main.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const start = Date.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [main, ...args],
      {
        cwd: root,
        env: { PATH: process.env.PATH, ...env },
        timeout: 30_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr, ms: Date.now() - start });
      },
    );
  });
}

/** A 128-bit hex secret: what must never appear in the CLI's output. */
const SECRET = /[0-9a-f]{32}/;

async function holderApp(options: DistributedLockModuleOptions): Promise<TestingModule> {
  const app = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ logger: false, identity: 'billing-7', ...options })],
  }).compile();
  await app.init();
  return app;
}

describe('nestjs-distributed-lock CLI', () => {
  let fleet: RedisFleet;
  let app: TestingModule | undefined;

  beforeAll(async () => {
    execFileSync(process.execPath, [
      require.resolve('typescript/bin/tsc'),
      '-p',
      join(root, 'libs/distributed-lock/tsconfig.lib.json'),
      '--outDir',
      built,
      '--declaration',
      'false',
      '--sourceMap',
      'false',
      // tsconfig.lib.json inlines sources into the published maps; no maps here, so no sources.
      '--inlineSources',
      'false',
    ]);
    fleet = await RedisFleet.start(3);
  }, 120_000);
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await fleet.heal();
  });
  afterAll(async () => {
    await fleet.stop();
  });

  it('prints --help with examples, and exits 2 on bad arguments with one line', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Examples:/);
    expect(help.stdout).toMatch(/release KEY/);
    const redis = `--redis=${fleet.urls[0]}`;
    for (const args of [
      [],
      ['lsit', redis],
      ['list', '--bogus', redis],
      ['release', redis],
      ['release', 'a', 'b', redis],
      ['list', '--limit', '0', redis],
      ['list', '--reason', 'x', redis],
      ['list'],
      ['list', '--redis', 'http://x', '--etcd', 'h'],
      ['list', '--redis', 'localhost:6379'],
    ]) {
      const run = await cli(args);
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stdout).toBe('');
    }
  });

  it('lists and force-releases on Redis while the app holds the lock: table, JSON, fence, not held', async () => {
    app = await holderApp({ connections: fleet.urls, commandTimeout: 250 });
    const locks = app.get(LockService);
    const ttl = 3_000;
    let held: Lock | undefined;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const work = locks.runExclusive(
      'order:42',
      async (lock) => {
        held = lock;
        started();
        await aborted(lock.signal, 20_000);
      },
      { ttl },
    );
    await running;
    const other = await locks.acquire('report:daily', { ttl: 60_000 });

    const table = await cli(['list', '--redis', fleet.urls.join(',')]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^KEY\s+KIND\s+HOLDER\s+TOKEN\s+EXPIRES IN$/);
    const row = lines.find((l) => l.startsWith('order:42'));
    expect(row).toMatch(
      new RegExp(`^order:42\\s+lock\\s+billing-7\\s+${held!.fencingToken}\\s+\\d`),
    );
    expect(lines.some((l) => l.startsWith('report:daily'))).toBe(true);
    expect(table.stdout).not.toMatch(SECRET);

    // Flags before the command, env instead of --redis.
    const json = await cli(['--json', '--prefix', 'order:', 'list'], {
      LOCK_REDIS_URLS: fleet.urls.join(','),
    });
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as HeldLock[];
    expect(parsed).toEqual([
      {
        key: 'order:42',
        store: 'default',
        kind: 'lock',
        identity: 'billing-7',
        fencingToken: held!.fencingToken,
        expiresAt: expect.any(Number) as number,
      },
    ]);

    const release = await cli([
      'release',
      'order:42',
      '--reason',
      'INC-7',
      '--redis',
      fleet.urls.join(','),
    ]);
    expect(release.code).toBe(0);
    expect(release.stdout).toMatch(/^released order:42 \(INC-7\)/);
    // The app's holder finds out at its next auto-extension (at half the TTL).
    await expect(work).resolves.toBeUndefined();
    expect(held!.signal.aborted).toBe(true);
    const next = await locks.acquire('order:42');
    expect(next.fencingToken).toBeGreaterThan(held!.fencingToken);
    await next.release();

    const again = await cli(['release', 'order:42', '--redis', fleet.urls.join(',')]);
    expect(again).toMatchObject({ code: 0, stdout: 'not held: order:42\n' });
    await other.release();
  });

  it('exits 1 with one line within a few seconds when Redis is unreachable or paused, never printing the password', async () => {
    const refused = await cli(['list', '--redis', 'redis://admin:hunter2secret@127.0.0.1:1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr + refused.stdout).not.toMatch(/hunter2secret/);

    for (const node of fleet.nodes) node.pause();
    const urls = fleet.urls.map((u) => u.replace('redis://', 'redis://admin:hunter2secret@'));
    const paused = await cli(['release', 'k', '--timeout', '2000', '--redis', urls.join(',')]);
    for (const node of fleet.nodes) node.resume();
    expect(paused.code).toBe(1);
    expect(paused.stderr.trim().split('\n')).toHaveLength(1);
    expect(paused.stderr + paused.stdout).not.toMatch(/hunter2secret/);
    expect(paused.ms).toBeLessThan(6_000);
  });

  it('lists and releases on PostgreSQL, and fails in seconds when it is paused', async () => {
    const server = await PostgresServer.start();
    try {
      app = await holderApp({
        backend: postgresBackend({ connectionString: server.connectionString }),
      });
      const lock = await app.get(LockService).acquire('invoice:9', { ttl: 30_000 });
      const url = server.connectionString.replace('postgres@', 'postgres:hunter2secret@');
      const list = await cli(['list', '--json', '--postgres', url]);
      expect(list.code).toBe(0);
      expect(JSON.parse(list.stdout)).toEqual([
        expect.objectContaining({
          key: 'invoice:9',
          identity: 'billing-7',
          fencingToken: lock.fencingToken,
        }),
      ]);
      const release = await cli(['release', 'invoice:9', '--postgres', url]);
      expect(release.code).toBe(0);
      await expect(lock.extend()).rejects.toMatchObject({ name: 'LockLostError' });
      expect(lock.signal.aborted).toBe(true);

      server.pause();
      const down = await cli(['list', '--timeout', '2000', '--postgres', url]);
      server.resume();
      expect(down.code).toBe(1);
      expect(down.stderr.trim().split('\n')).toHaveLength(1);
      expect(down.stderr).not.toMatch(/hunter2secret/);
      expect(down.ms).toBeLessThan(6_000);
    } finally {
      await app?.close();
      app = undefined;
      await server.stop();
    }
  });

  it('lists and releases on etcd', async () => {
    const cluster = await EtcdCluster.start(3);
    try {
      app = await holderApp({ backend: etcdBackend({ hosts: cluster.hosts }) });
      const lock = await app.get(LockService).acquire('export:1', { ttl: 30_000 });
      const list = await cli(['list', '--etcd', cluster.hosts.join(',')]);
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(
        new RegExp(`export:1\\s+lock\\s+billing-7\\s+${lock.fencingToken}\\s`),
      );
      const release = await cli([
        'release',
        'export:1',
        '--json',
        '--etcd',
        cluster.hosts.join(','),
      ]);
      expect(release.code).toBe(0);
      expect(JSON.parse(release.stdout)).toEqual({ key: 'export:1', released: true });
      await expect(lock.extend()).rejects.toMatchObject({ name: 'LockLostError' });
    } finally {
      await app?.close();
      app = undefined;
      await cluster.stop();
    }
  });
});
