import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, redisServerBinary, waitForPing } from './redis-fleet';

/** Hash slots of a Redis Cluster. */
const SLOTS = 16_384;

/** How long `RedisClusterFleet.start` waits for the cluster to converge. */
const CONVERGE_TIMEOUT_MS = 15_000;

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A contiguous range of hash slots served by one master. */
export interface SlotRange {
  /** First slot (inclusive). */
  readonly from: number;
  /** Last slot (inclusive). */
  readonly to: number;
  /** Client port of the master serving it. */
  readonly port: number;
}

/** One cluster-enabled redis-server process. */
interface ClusterServer {
  readonly port: number;
  readonly busPort: number;
  readonly dir: string;
  child: ChildProcess | undefined;
}

/** `count` distinct free loopback ports. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** Spawns a cluster-enabled server and resolves once it answers PING. */
async function spawnServer(server: ClusterServer): Promise<void> {
  const child = spawn(
    redisServerBinary(),
    [
      ...['--port', String(server.port), '--cluster-port', String(server.busPort)],
      ...['--cluster-enabled', 'yes', '--cluster-config-file', join(server.dir, 'nodes.conf')],
      ...['--cluster-announce-ip', '127.0.0.1', '--bind', '127.0.0.1', '--protected-mode', 'no'],
      ...['--save', '', '--appendonly', 'no', '--dir', server.dir],
    ],
    { stdio: 'ignore' },
  );
  live.add(child);
  child.once('exit', () => {
    live.delete(child);
    if (server.child === child) server.child = undefined;
  });
  server.child = child;
  await waitForPing(server.port);
}

/** Parses `CLUSTER INFO` into its fields. */
function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(':');
    if (at > 0) fields.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  return fields;
}

/**
 * Why the node behind `admin` does not yet see a healthy cluster of `size` masters, or `undefined`
 * once it reports `cluster_state:ok`, every slot served and every peer connected (no handshake).
 */
async function notConverged(admin: Redis, size: number): Promise<string | undefined> {
  const info = parseInfo(String(await admin.call('CLUSTER', 'INFO')));
  if (info.get('cluster_state') !== 'ok') return `cluster_state:${info.get('cluster_state')}`;
  if (info.get('cluster_slots_ok') !== String(SLOTS)) {
    return `cluster_slots_ok:${info.get('cluster_slots_ok')}`;
  }
  if (info.get('cluster_known_nodes') !== String(size)) {
    return `cluster_known_nodes:${info.get('cluster_known_nodes')}`;
  }
  const nodes = String(await admin.call('CLUSTER', 'NODES'))
    .split('\n')
    .filter((line) => line.trim() !== '');
  const unhealthy = nodes.filter(
    (line) => !line.includes(' connected') || /handshake|noaddr|fail/.test(line.split(' ')[2]),
  );
  if (nodes.length !== size || unhealthy.length > 0) return `nodes:\n${nodes.join('\n')}`;
  return undefined;
}

/**
 * A real Redis Cluster of `masters` cluster-enabled redis-server processes (no replicas) on free
 * loopback ports, the 16384 hash slots split evenly between them. Nothing is persisted.
 */
export class RedisClusterFleet {
  private constructor(
    private readonly servers: ClusterServer[],
    /** The slots each master serves, in slot order. */
    readonly slotRanges: readonly SlotRange[],
  ) {}

  /**
   * Starts `masters` servers, assigns the slots (`CLUSTER ADDSLOTSRANGE`), joins them
   * (`CLUSTER MEET`) and resolves once every node reports `cluster_state:ok` and knows every other.
   * @throws Error when redis-server is missing or the cluster does not converge within 15 s
   */
  static async start(masters = 3): Promise<RedisClusterFleet> {
    redisServerBinary();
    if (!Number.isInteger(masters) || masters < 1) throw new Error(`masters must be >= 1`);
    const ports = await freePorts(masters * 2);
    const servers: ClusterServer[] = Array.from({ length: masters }, (_, i) => ({
      port: ports[2 * i],
      busPort: ports[2 * i + 1],
      dir: mkdtempSync(join(tmpdir(), 'dlock-cluster-')),
      child: undefined,
    }));
    const fleet = new RedisClusterFleet(
      servers,
      servers.map((s, i) => ({
        from: Math.floor((i * SLOTS) / masters),
        to: Math.floor(((i + 1) * SLOTS) / masters) - 1,
        port: s.port,
      })),
    );
    const admins: Redis[] = [];
    try {
      await Promise.all(servers.map((s) => spawnServer(s)));
      admins.push(
        ...servers.map(
          (s) => new Redis({ host: '127.0.0.1', port: s.port, maxRetriesPerRequest: 1 }),
        ),
      );
      await Promise.all(
        admins.map(async (admin, i) => {
          // Distinct epochs up front (as `redis-cli --cluster create` does): no collision to resolve.
          await admin.call('CLUSTER', 'SET-CONFIG-EPOCH', String(i + 1));
          const { from, to } = fleet.slotRanges[i];
          await admin.call('CLUSTER', 'ADDSLOTSRANGE', String(from), String(to));
        }),
      );
      // The bus port is not port + 10000 here, so MEET names it explicitly.
      const { port, busPort } = servers[0];
      await Promise.all(
        admins
          .slice(1)
          .map((admin) =>
            admin.call('CLUSTER', 'MEET', '127.0.0.1', String(port), String(busPort)),
          ),
      );
      await fleet.converge(admins);
    } catch (error) {
      await fleet.stop();
      throw error;
    } finally {
      await Promise.all(admins.map((a) => a.quit().catch(() => a.disconnect())));
    }
    return fleet;
  }

  /** Client ports of the masters. */
  get nodes(): number[] {
    return this.servers.map((s) => s.port);
  }

  /** Seed nodes for `new Cluster(startupNodes, ...)` (ioredis). */
  get startupNodes(): Array<{ host: string; port: number }> {
    return this.servers.map((s) => ({ host: '127.0.0.1', port: s.port }));
  }

  /** Client port of the master serving hash slot `slot`. */
  portOfSlot(slot: number): number {
    const range = this.slotRanges.find((r) => slot >= r.from && slot <= r.to);
    if (!range) throw new Error(`slot ${slot} is outside 0..${SLOTS - 1}`);
    return range.port;
  }

  /** Kills every server and removes their directories. */
  async stop(): Promise<void> {
    await Promise.all(
      this.servers.map(async (server) => {
        const child = server.child;
        if (child) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGKILL');
          await exited;
        }
        rmSync(server.dir, { recursive: true, force: true });
      }),
    );
  }

  /** Polls every node until all agree the cluster is healthy, or throws after the deadline. */
  private async converge(admins: Redis[]): Promise<void> {
    const deadline = Date.now() + CONVERGE_TIMEOUT_MS;
    for (;;) {
      const pending = await Promise.all(
        admins.map((admin) => notConverged(admin, this.servers.length)),
      );
      const first = pending.findIndex((p) => p !== undefined);
      if (first < 0) return;
      if (Date.now() > deadline) {
        throw new Error(
          `Redis Cluster did not converge within ${CONVERGE_TIMEOUT_MS} ms; ` +
            `node ${this.servers[first].port}: ${pending[first]}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
