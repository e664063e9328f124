import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';

const INSTALL_HINT =
  'redis-server was not found on PATH. The tests run against real Redis processes. Install it with ' +
  '`sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), or run `bash .ci/run`.';

/** Fails loudly (never skips) when redis-server is missing. */
export function redisServerBinary(): string {
  const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (found.error || found.status !== 0) throw new Error(INSTALL_HINT);
  return 'redis-server';
}

/** A free TCP port on loopback, picked by the OS. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** TLS material for a server started by the harness. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
  /** The CA certificate (PEM), for clients. */
  ca: string;
}

/** Resolves when the server at `port` answers PING, or rejects after `timeoutMs`. */
export async function waitForPing(port: number, timeoutMs = 5_000, tls?: TlsFiles): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket: Socket = tls
        ? tlsConnect({ port, host: '127.0.0.1', ca: tls.ca, servername: 'localhost' })
        : createConnection({ port, host: '127.0.0.1' });
      const done = (v: boolean) => {
        socket.destroy();
        resolve(v);
      };
      socket.setTimeout(500, () => done(false));
      socket.on('error', () => done(false));
      socket.on('data', (d) => done(d.toString().startsWith('+PONG')));
      socket.on(tls ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** One redis-server process this harness started. */
export class RedisNode {
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'dlock-redis-'));

  constructor(
    readonly port: number,
    private readonly extraArgs: string[] = [],
    /** When set, the server listens only with TLS on `port`. */
    readonly tls?: TlsFiles,
  ) {}

  /** `redis://127.0.0.1:<port>` (`rediss://` with TLS) */
  get url(): string {
    return `${this.tls ? 'rediss' : 'redis'}://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts (or restarts) the server on the same port, with no persistence: it comes back empty. */
  async start(): Promise<void> {
    if (this.child) return;
    const listen = this.tls
      ? [
          ...['--port', '0', '--tls-port', String(this.port), '--tls-auth-clients', 'no'],
          ...['--tls-cert-file', this.tls.certFile, '--tls-key-file', this.tls.keyFile],
          ...['--tls-ca-cert-file', this.tls.caFile],
        ]
      : ['--port', String(this.port)];
    const child = spawn(
      redisServerBinary(),
      [
        ...listen,
        ...['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir],
        ...['--enable-debug-command', 'local', '--protected-mode', 'no'],
        ...this.extraArgs,
      ],
      { stdio: 'ignore' },
    );
    live.add(child);
    child.once('exit', () => {
      live.delete(child);
      if (this.child === child) this.child = undefined;
    });
    this.child = child;
    await waitForPing(this.port, 5_000, this.tls);
  }

  /** SIGKILL: the instance vanishes with everything it held. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP: the instance keeps its sockets but answers nothing. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** SIGCONT after `pause()`. */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kill, optionally wait, start again (empty). */
  async restart(delayMs = 0): Promise<void> {
    await this.kill();
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    await this.start();
  }

  /** Kills the server and removes its directory. */
  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** N independent redis-server processes on free loopback ports. */
export class RedisFleet {
  private constructor(readonly nodes: RedisNode[]) {}

  /** Starts `n` servers (never on fixed ports). */
  static async start(n: number, extraArgs: string[] = [], tls?: TlsFiles): Promise<RedisFleet> {
    redisServerBinary();
    const nodes: RedisNode[] = [];
    try {
      for (let i = 0; i < n; i += 1) {
        const node = new RedisNode(await freePort(), extraArgs, tls);
        nodes.push(node);
        await node.start();
      }
    } catch (error) {
      await Promise.all(nodes.map((x) => x.destroy()));
      throw error;
    }
    return new RedisFleet(nodes);
  }

  get urls(): string[] {
    return this.nodes.map((n) => n.url);
  }

  /** Makes sure every node runs and answers (after tests that killed or paused some). */
  async heal(): Promise<void> {
    for (const node of this.nodes) {
      node.resume();
      await node.start();
    }
  }

  /** Stops every server and removes their directories. */
  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map((n) => {
        n.resume();
        return n.destroy();
      }),
    );
  }
}
