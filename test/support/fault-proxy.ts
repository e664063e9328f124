import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of one Redis instance that can add latency (with jitter) to every chunk in
 * both directions, or cut every connection. Loopback only.
 */
export class FaultProxy {
  latencyMs = 0;
  jitterMs = 0;
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** Starts a proxy on a free loopback port forwarding to `targetPort`. */
  static async start(targetPort: number): Promise<FaultProxy> {
    let proxy!: FaultProxy;
    const server = createServer((client) => {
      const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
      proxy.track(client, upstream);
      const pipe = (from: Socket, to: Socket) =>
        from.on('data', (chunk) => {
          const delay = proxy.latencyMs + Math.random() * proxy.jitterMs;
          if (delay <= 0) to.write(chunk);
          else setTimeout(() => to.writable && to.write(chunk), delay);
        });
      pipe(client, upstream);
      pipe(upstream, client);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    proxy = new FaultProxy(server, (server.address() as { port: number }).port);
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

  private track(a: Socket, b: Socket): void {
    for (const s of [a, b]) {
      this.sockets.add(s);
      s.on('close', () => {
        this.sockets.delete(s);
        a.destroy();
        b.destroy();
      });
      s.on('error', () => undefined);
    }
  }
}
