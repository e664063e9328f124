import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of one Redis instance that can add latency (with jitter) to every chunk in
 * both directions, or cut every connection. Loopback only.
 */
export class FaultProxy {
  /** Added to every chunk, each direction (so a round trip gets twice this). */
  latencyMs = 0;
  /** Up to this much more, at random, per chunk (never reordering bytes: a chunk waits for the last). */
  jitterMs = 0;
  /** Extra delay on requests only (client → Redis), on top of `latencyMs`. */
  upMs = 0;
  /** Extra delay on replies only (Redis → client), on top of `latencyMs`. */
  downMs = 0;
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private port = 0;

  private constructor(private readonly targetPort: number) {
    this.server = createServer((client) => this.bridge(client));
  }

  /** Starts a proxy on a free loopback port forwarding to `targetPort`. */
  static async start(targetPort: number): Promise<FaultProxy> {
    const proxy = new FaultProxy(targetPort);
    await new Promise<void>((r) => proxy.server.listen(0, '127.0.0.1', r));
    proxy.port = (proxy.server.address() as { port: number }).port;
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Resets every open connection (clients reconnect through the proxy). */
  drop(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.drop();
    await new Promise((r) => this.server.close(r));
  }

  private bridge(client: Socket): void {
    const upstream = createConnection({ host: '127.0.0.1', port: this.targetPort });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    const pipe = (from: Socket, to: Socket, extra: () => number) => {
      // A TCP stream must stay in order: each chunk is due no earlier than the one before it.
      let lastDue = 0;
      from.on('data', (chunk) => {
        const due = Math.max(
          lastDue,
          Date.now() + this.latencyMs + extra() + Math.random() * this.jitterMs,
        );
        lastDue = due;
        const wait = due - Date.now();
        if (wait <= 0) to.write(chunk);
        else setTimeout(() => to.writable && to.write(chunk), wait);
      });
    };
    pipe(client, upstream, () => this.upMs);
    pipe(upstream, client, () => this.downMs);
  }
}
