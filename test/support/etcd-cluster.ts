import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis-fleet';

const INSTALL_HINT =
  'etcd was not found on PATH. The etcd tests run against real etcd members that the harness starts ' +
  "itself (never the machine's own service). Install it with `sudo apt-get install -y etcd-server` " +
  '(Debian/Ubuntu) or `brew install etcd` (macOS), or run `bash .ci/run`.';

/** Fails loudly (never skips) when etcd is missing. */
export function etcdBinary(): string {
  const found = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  if (found.error || found.status !== 0) throw new Error(INSTALL_HINT);
  return 'etcd';
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** What `/v3/maintenance/status` answers (the grpc-gateway's JSON). */
interface StatusJson {
  header?: { member_id?: string; revision?: string; cluster_id?: string };
  leader?: string;
}

/** One `etcd` process of an {@link EtcdCluster}. */
export class EtcdMember {
  private child: ChildProcess | undefined;
  private paused = false;

  constructor(
    readonly name: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
    private readonly args: () => string[],
  ) {}

  /** `http://127.0.0.1:<client port>` */
  get url(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  get peerUrl(): string {
    return `http://127.0.0.1:${this.peerPort}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the member (again) on its data directory; does not wait for the cluster. */
  start(): void {
    if (this.child) return;
    const child = spawn(etcdBinary(), this.args(), { stdio: 'ignore' });
    live.add(child);
    child.once('exit', () => {
      live.delete(child);
      if (this.child === child) this.child = undefined;
    });
    this.child = child;
    this.paused = false;
  }

  /** SIGKILL: the process dies at once; its data directory stays. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP: sockets stay open, nothing answers (raft heartbeats stop too). */
  pause(): void {
    if (!this.child) return;
    this.child.kill('SIGSTOP');
    this.paused = true;
  }

  /** SIGCONT after `pause()`. */
  resume(): void {
    if (!this.child || !this.paused) return;
    this.child.kill('SIGCONT');
    this.paused = false;
  }

  /** Kills the member and starts it again on its data; resolves once it answers as healthy. */
  async restart(): Promise<void> {
    await this.kill();
    this.start();
    await this.healthy();
  }

  /** The member's status (leader ID, its own ID), or undefined when it does not answer in time. */
  async status(timeoutMs = 500): Promise<StatusJson | undefined> {
    return post<StatusJson>(`${this.url}/v3/maintenance/status`, {}, timeoutMs);
  }

  /** Resolves when the member reports itself healthy (it has a leader and can commit). */
  async healthy(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const health = await get<{ health?: string }>(`${this.url}/health`, 500);
      if (health?.health === 'true') return;
      if (Date.now() > deadline) {
        throw new Error(`etcd member ${this.name} (${this.url}) did not become healthy`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * Real `etcd` members on free loopback ports (client and peer), each with a temp data directory,
 * election timeouts short enough for tests (`--heartbeat-interval 10 --election-timeout 100`).
 * Members can be SIGKILLed, SIGSTOPped / SIGCONTed and restarted on their data.
 */
export class EtcdCluster {
  private readonly root: string;

  private constructor(
    readonly members: EtcdMember[],
    root: string,
  ) {
    this.root = root;
  }

  /** Starts `size` members (1 or 3) and resolves once every one of them is healthy. */
  static async start(size = 1): Promise<EtcdCluster> {
    etcdBinary();
    const root = mkdtempSync(join(tmpdir(), 'dlock-etcd-'));
    const token = `dlock-${randomBytes(6).toString('hex')}`;
    const ports: Array<[number, number]> = [];
    for (let i = 0; i < size; i += 1) ports.push([await freePort(), await freePort()]);
    const initial = ports.map(([, peer], i) => `m${i}=http://127.0.0.1:${peer}`).join(',');
    const members = ports.map(([client, peer], i) => {
      const name = `m${i}`;
      const dataDir = join(root, name);
      return new EtcdMember(name, client, peer, dataDir, () => [
        ...['--name', name, '--data-dir', dataDir],
        ...['--listen-client-urls', `http://127.0.0.1:${client}`],
        ...['--advertise-client-urls', `http://127.0.0.1:${client}`],
        ...['--listen-peer-urls', `http://127.0.0.1:${peer}`],
        ...['--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`],
        ...['--initial-cluster', initial, '--initial-cluster-token', token],
        ...['--initial-cluster-state', 'new'],
        ...['--heartbeat-interval', '10', '--election-timeout', '100'],
        ...['--logger', 'zap', '--log-level', 'error'],
      ]);
    });
    const cluster = new EtcdCluster(members, root);
    try {
      for (const m of members) m.start();
      await cluster.healthy();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Client URLs of every member. */
  get hosts(): string[] {
    return this.members.map((m) => m.url);
  }

  /** Resolves once every running member is healthy. */
  async healthy(timeoutMs = 10_000): Promise<void> {
    await Promise.all(this.members.filter((m) => m.running).map((m) => m.healthy(timeoutMs)));
  }

  /** The member that is leader now (asked of the members themselves), polling up to `timeoutMs`. */
  async leader(timeoutMs = 5_000): Promise<EtcdMember> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const m of this.members.filter((x) => x.running)) {
        const status = await m.status();
        if (status?.leader && status.leader === status.header?.member_id) return m;
      }
      if (Date.now() > deadline) throw new Error('no etcd member is leader');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** SIGKILLs every member, starts them again on their data, resolves once all are healthy. */
  async restartAll(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill()));
    for (const m of this.members) m.start();
    await this.healthy();
  }

  /**
   * SIGKILLs every member, deletes their data and starts them again with the same flags: a new empty
   * cluster with the same cluster ID (it derives from the members' names, peer URLs and token) whose
   * revisions start over, as after a data wipe or a restore from an old snapshot.
   */
  async wipeAll(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill()));
    for (const m of this.members) rmSync(m.dataDir, { recursive: true, force: true });
    for (const m of this.members) m.start();
    await this.healthy();
  }

  /** Resumes paused members and starts stopped ones; resolves once all are healthy. */
  async heal(): Promise<void> {
    for (const m of this.members) {
      m.resume();
      m.start();
    }
    await this.healthy();
  }

  /** Kills every member and removes the data directories. */
  async stop(): Promise<void> {
    for (const m of this.members) m.resume();
    await Promise.all(this.members.map((m) => m.kill()));
    rmSync(this.root, { recursive: true, force: true });
  }
}

async function get<T>(url: string, timeoutMs: number): Promise<T | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return (await res.json()) as T;
  } catch {
    return undefined;
  }
}

async function post<T>(url: string, body: unknown, timeoutMs: number): Promise<T | undefined> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return (await res.json()) as T;
  } catch {
    return undefined;
  }
}
