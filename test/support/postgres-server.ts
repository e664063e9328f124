import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import {
  accessSync,
  chownSync,
  constants as fsConstants,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { Client } from 'pg';
import { freePort } from './redis-fleet';

const INSTALL_HINT =
  'PostgreSQL server binaries (initdb, postgres) were not found in /usr/lib/postgresql/<major>/bin ' +
  'or on PATH. The PostgreSQL tests run against a real server that the harness starts itself ' +
  "(never the machine's own service). Install them with `sudo apt-get install -y postgresql` " +
  '(Debian/Ubuntu) or `brew install postgresql@17` (macOS), or run `bash .ci/run`.';

/** The PostgreSQL server programs the harness runs; both come from the same directory. */
export interface PostgresBinaries {
  initdb: string;
  postgres: string;
  /** Major version, e.g. 15. */
  major: number;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Directories that may hold initdb + postgres, best first. */
function candidateBinDirs(): string[] {
  const debian = '/usr/lib/postgresql';
  const versioned = existsSync(debian)
    ? readdirSync(debian)
        .filter((name) => /^\d+(\.\d+)?$/.test(name))
        .sort((a, b) => Number(b) - Number(a))
        .map((name) => join(debian, name, 'bin'))
    : [];
  const onPath = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return [...versioned, ...onPath];
}

let cachedBinaries: PostgresBinaries | undefined;

/**
 * Finds `initdb` and `postgres` (in `binDir` when given, else in the highest
 * `/usr/lib/postgresql/<major>/bin`, else on PATH). Fails loudly (never skips) when they are missing.
 */
export function postgresBinaries(binDir?: string): PostgresBinaries {
  if (!binDir && cachedBinaries) return cachedBinaries;
  for (const dir of binDir ? [binDir] : candidateBinDirs()) {
    const initdb = join(dir, 'initdb');
    const postgres = join(dir, 'postgres');
    if (!isExecutable(initdb) || !isExecutable(postgres)) continue;
    // `--version` is answered before the server's refuse-to-run-as-root check.
    const out = spawnSync(postgres, ['--version'], { encoding: 'utf8' });
    const major = /\(PostgreSQL\)\s+(\d+)/.exec(out.stdout ?? '')?.[1];
    if (out.status !== 0 || !major) continue;
    const found = { initdb, postgres, major: Number(major) };
    if (!binDir) cachedBinaries = found;
    return found;
  }
  throw new Error(binDir ? `${INSTALL_HINT} (looked only in ${binDir})` : INSTALL_HINT);
}

/** The OS account the server processes run as. */
interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

/**
 * PostgreSQL refuses to run as root: as root, the harness runs it as the `postgres` system user
 * (spawned with that uid/gid directly, so the process we hold is the postmaster itself, not a
 * `runuser`/`su` wrapper that would swallow SIGKILL/SIGSTOP). Otherwise, as the current user.
 */
function runAs(): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const fromGetent = spawnSync('getent', ['passwd', 'postgres'], { encoding: 'utf8' });
  let line = fromGetent.status === 0 ? fromGetent.stdout.trim() : '';
  if (!line && existsSync('/etc/passwd')) {
    line =
      readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('postgres:')) ?? '';
  }
  const [name, , uid, gid] = line.split(':');
  if (name !== 'postgres' || !/^\d+$/.test(uid ?? '') || !/^\d+$/.test(gid ?? '')) {
    throw new Error(
      'The tests run as root, and PostgreSQL refuses to run as root; the harness runs it as the ' +
        '`postgres` system user, but there is no such user. Create it (`useradd --system postgres`; ' +
        "Debian's `postgresql` package does) or run the tests as a non-root user.",
    );
  }
  return { uid: Number(uid), gid: Number(gid), name };
}

/** Throws unless `user` can reach `dir` (every ancestor must be searchable by it). */
function assertReachable(dir: string, user: RunAs): void {
  for (let d = dirname(dir); ; d = dirname(d)) {
    const st = statSync(d);
    const ok =
      st.mode & 0o001 ||
      (st.uid === user.uid && st.mode & 0o100) ||
      (st.gid === user.gid && st.mode & 0o010);
    if (!ok) {
      throw new Error(
        `The ${user.name} user (which runs PostgreSQL because the tests run as root) cannot enter ` +
          `${d}. Point TMPDIR at a directory it can reach (e.g. TMPDIR=/tmp).`,
      );
    }
    if (d === dirname(d)) return;
  }
}

/** `[state, ppid]` of a live process from /proc, or undefined when it is gone. */
function procStat(pid: number): [string, number] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [fields[0], Number(fields[1])];
  } catch {
    return undefined;
  }
}

const hasProc = existsSync('/proc/self/stat');

/** Whether `pid` still runs (zombies count as gone: nobody may reap them in a container). */
function isAlive(pid: number): boolean {
  if (hasProc) {
    const stat = procStat(pid);
    return stat !== undefined && stat[0] !== 'Z' && stat[0] !== 'X';
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Live children of `parent`. PostgreSQL's children each call setsid(), so a process-group signal
 * would miss them: they are found by parent pid instead.
 */
function childPids(parent: number): number[] {
  if (!hasProc) {
    const out = spawnSync('pgrep', ['-P', String(parent)], { encoding: 'utf8' });
    return (out.stdout ?? '').split(/\s+/).filter(Boolean).map(Number);
  }
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = procStat(Number(name));
    if (stat && stat[1] === parent && stat[0] !== 'Z') pids.push(Number(name));
  }
  return pids;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Waits (synchronously, bounded) until `pid` is stopped by SIGSTOP, so it cannot fork any more. */
function waitStopped(pid: number, timeoutMs = 2_000): void {
  if (!hasProc) {
    sleepSync(20);
    return;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const stat = procStat(pid);
    if (!stat || stat[0] === 'T' || stat[0] === 'Z') return;
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop after SIGSTOP`);
    sleepSync(1);
  }
}

/**
 * Freezes the postmaster (so it forks nothing more), then sends `sig` to each of its children and
 * to itself. Returns the children it signalled.
 */
function signalTree(postmaster: number, sig: NodeJS.Signals): number[] {
  signal(postmaster, 'SIGSTOP');
  waitStopped(postmaster);
  const children = childPids(postmaster);
  for (const pid of children) signal(pid, sig);
  if (sig !== 'SIGSTOP') signal(postmaster, sig);
  return children;
}

const live = new Set<PostgresServer>();
process.on('exit', () => {
  for (const server of live) server.destroySync();
});

/** Options of {@link PostgresServer.start}. */
export interface PostgresServerOptions {
  /** TCP port on 127.0.0.1. Default: a free one picked by the OS (never 5432 on purpose). */
  port?: number;
  /**
   * Extra `-c name=value` server settings, applied after the harness's defaults (so they win).
   * E.g. `{ synchronous_commit: 'off' }` or `{ max_connections: 300 }`.
   */
  settings?: Record<string, string | number | boolean>;
  /** How long `start()` waits for the server to accept connections. Default 15 000 ms. */
  startTimeoutMs?: number;
  /** A directory holding `initdb` and `postgres`. Default: found by {@link postgresBinaries}. */
  binDir?: string;
}

/**
 * Settings that make a throwaway server start fast and stay quiet. `fsync=off` and
 * `full_page_writes=off` lose nothing when only the *process* dies (the kernel keeps its page
 * cache), which is all `kill()` simulates. `synchronous_commit` stays ON: with it off, a commit is
 * acknowledged before its WAL is even written to the kernel, so `kill()` right after a commit
 * could lose it and durability tests would flake. With fsync off, a synchronous commit costs one
 * write(), not a disk flush.
 */
const DEFAULT_SETTINGS: Record<string, string> = {
  listen_addresses: '127.0.0.1',
  fsync: 'off',
  synchronous_commit: 'on',
  full_page_writes: 'off',
  wal_level: 'minimal',
  max_wal_senders: '0',
  logging_collector: 'off',
  log_min_messages: 'warning',
  log_checkpoints: 'off',
  shared_buffers: '32MB',
  timezone: 'UTC',
};

const LOG_LIMIT = 64 * 1024;

/**
 * A PostgreSQL server the harness initialises in a fresh temporary directory and runs on a free
 * loopback port, as a child of the test process: never the machine's own server. Superuser
 * `postgres`, trust authentication, database `postgres`.
 *
 * `kill()` + `start()` is a crash and restart that keeps the data; `stop()` is final and removes
 * the directory. Every process it started is SIGKILLed when the test process exits.
 */
export class PostgresServer {
  private child: ChildProcess | undefined;
  private stopped = false;
  private logTail = '';

  private constructor(
    private currentPort: number,
    /** The temporary directory holding the data directory and the Unix socket. */
    readonly baseDir: string,
    private readonly binaries: PostgresBinaries,
    private readonly user: RunAs | undefined,
    private readonly settings: Record<string, string>,
    private readonly startTimeoutMs: number,
    private readonly portIsFixed: boolean,
  ) {}

  /**
   * Runs `initdb` into a fresh temporary directory, then starts the server and waits until it
   * accepts connections. Throws (never skips) when PostgreSQL is not installed.
   */
  static async start(options: PostgresServerOptions = {}): Promise<PostgresServer> {
    const binaries = postgresBinaries(options.binDir);
    const user = runAs();
    const settings: Record<string, string> = { ...DEFAULT_SETTINGS };
    for (const [name, value] of Object.entries(options.settings ?? {})) {
      settings[name] = typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value);
    }
    const baseDir = mkdtempSync(join(tmpdir(), 'dlock-pg-'));
    const server = new PostgresServer(
      options.port ?? (await freePort()),
      baseDir,
      binaries,
      user,
      settings,
      options.startTimeoutMs ?? 15_000,
      options.port !== undefined,
    );
    live.add(server);
    try {
      if (user) {
        assertReachable(baseDir, user);
        chownSync(baseDir, user.uid, user.gid);
      }
      await server.initdb();
      await server.start();
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  /** The TCP port on 127.0.0.1 (kept across `kill()` + `start()`). */
  get port(): number {
    return this.currentPort;
  }

  /** `postgresql://postgres@127.0.0.1:<port>/postgres` */
  get connectionString(): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** The data directory (initdb's `-D`). */
  get dataDir(): string {
    return join(this.baseDir, 'data');
  }

  /** Whether the postmaster runs (it may be paused). */
  get running(): boolean {
    return this.child !== undefined;
  }

  /** The postmaster's pid while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The server's recent stderr (the last 64 KiB), for diagnostics. */
  get log(): string {
    return this.logTail;
  }

  private appendLog(chunk: Buffer | string): void {
    this.logTail = (this.logTail + chunk.toString()).slice(-LOG_LIMIT);
  }

  private spawnOptions(): SpawnOptions {
    return {
      cwd: this.baseDir,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: this.baseDir,
        LC_ALL: 'C',
        LANG: 'C',
        TZ: 'UTC',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(this.user ? { uid: this.user.uid, gid: this.user.gid } : {}),
    };
  }

  private async initdb(): Promise<void> {
    const args = [
      ...['-D', this.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync'],
      ...['--locale=C', '-E', 'UTF8'],
      ...(this.binaries.major >= 14 ? ['--no-instructions'] : []),
    ];
    const child = spawn(this.binaries.initdb, args, this.spawnOptions());
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    if (code !== 0) {
      throw new Error(`initdb failed (exit ${String(code)}):\n${output.slice(-4_000)}`);
    }
  }

  /**
   * Starts the server, or starts it again after `kill()` on the same data directory and port:
   * PostgreSQL runs crash recovery and every committed row is still there. No-op while it runs.
   */
  async start(): Promise<void> {
    if (this.stopped) throw new Error('PostgresServer.start(): this server was stopped for good');
    if (this.child) return;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.boot();
        return;
      } catch (error) {
        // The free port was taken between picking it and binding it: pick another (first start).
        const portTaken = /could not bind|Address already in use/i.test(this.logTail);
        if (!portTaken || this.portIsFixed || attempt >= 3) throw error;
        this.currentPort = await freePort();
      }
    }
  }

  private async boot(): Promise<void> {
    const settings = Object.entries(this.settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
    const args = ['-D', this.dataDir, '-p', String(this.port), '-k', this.baseDir, ...settings];
    const child = spawn(this.binaries.postgres, args, this.spawnOptions());
    this.logTail = '';
    child.stdout?.on('data', (d: Buffer) => this.appendLog(d));
    child.stderr?.on('data', (d: Buffer) => this.appendLog(d));
    let exited = false;
    child.once('exit', () => {
      exited = true;
      if (this.child === child) this.child = undefined;
    });
    child.once('error', (error) => {
      exited = true;
      if (this.child === child) this.child = undefined;
      this.appendLog(`could not run ${this.binaries.postgres}: ${error.message}\n`);
    });
    this.child = child;
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      if (exited) {
        throw new Error(
          `postgres on port ${this.port} exited while starting:\n${this.logTail.slice(-4_000)}`,
        );
      }
      if (await this.answers()) return;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(
          `postgres on port ${this.port} did not accept connections within ` +
            `${this.startTimeoutMs} ms:\n${this.logTail.slice(-4_000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Whether *this* server (checked by its data directory) answers a query on our port. */
  private async answers(): Promise<boolean> {
    const client = new Client({
      connectionString: this.connectionString,
      ssl: false,
      connectionTimeoutMillis: 1_000,
      query_timeout: 1_000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const res = await client.query<{ dir: string }>(
        "SELECT current_setting('data_directory') AS dir",
      );
      const dir = res.rows[0]?.dir;
      if (dir !== this.dataDir && dir !== realpathSync(this.dataDir)) {
        throw new Error(
          `port ${this.port} is served by another PostgreSQL (data directory ${dir})`,
        );
      }
      return true;
    } catch (error) {
      if (error instanceof Error && error.message.includes('served by another')) throw error;
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /**
   * SIGKILL to the postmaster and every child, like a crash: connections drop, nothing is shut
   * down cleanly. The data directory stays; `start()` brings the server back with its data.
   */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    const exited = new Promise((r) => child.once('exit', r));
    const children = signalTree(child.pid, 'SIGKILL');
    await exited;
    // The children are no longer ours to wait for (they were re-parented): poll until gone.
    const deadline = Date.now() + 5_000;
    while (children.some(isAlive)) {
      if (Date.now() > deadline) throw new Error('PostgreSQL children survived SIGKILL');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /**
   * SIGSTOP to the postmaster and every child: connections stay open, but nothing answers (not even
   * a `statement_timeout`), and new connections hang in the listen backlog.
   */
  pause(): void {
    const pid = this.child?.pid;
    if (!pid) return;
    for (const child of signalTree(pid, 'SIGSTOP')) waitStopped(child);
  }

  /** SIGCONT after `pause()`: the children first, then the postmaster. */
  resume(): void {
    const pid = this.child?.pid;
    if (!pid) return;
    for (const child of childPids(pid)) signal(child, 'SIGCONT');
    signal(pid, 'SIGCONT');
  }

  /**
   * Fast shutdown (SIGINT: running transactions roll back, clients are disconnected), then removes
   * the temporary directory. Final: the server cannot be started again.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const child = this.child;
    if (child?.pid) {
      this.resume();
      const exited = new Promise<boolean>((r) => child.once('exit', () => r(true)));
      child.kill('SIGINT');
      const timer = new Promise<boolean>((r) => setTimeout(() => r(false), 10_000).unref());
      if (!(await Promise.race([exited, timer]))) await this.kill();
    }
    this.removeLeftovers();
    live.delete(this);
  }

  /** Synchronous last-resort cleanup on process exit: SIGKILL everything, remove the directory. */
  destroySync(): void {
    this.stopped = true;
    const pid = this.child?.pid;
    if (pid) signalTree(pid, 'SIGKILL');
    this.child = undefined;
    this.removeLeftovers();
    live.delete(this);
  }

  /**
   * Removes the temporary directory and, after a `kill()` that was never followed by a `start()`,
   * the small System V shared-memory segment PostgreSQL leaves behind (a restart would reclaim it).
   */
  private removeLeftovers(): void {
    try {
      const lines = readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n');
      const shmid = lines[6]?.trim().split(/\s+/)[1];
      if (shmid && /^\d+$/.test(shmid)) spawnSync('ipcrm', ['-m', shmid], { stdio: 'ignore' });
    } catch {
      // no pid file: clean shutdown, or initdb never ran
    }
    rmSync(this.baseDir, { recursive: true, force: true });
  }
}
