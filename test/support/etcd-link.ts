import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of one etcd member's client port, for faults on the link between one client
 * and the cluster (the members themselves keep talking to each other). It forwards gRPC's HTTP/2
 * bytes untouched, in order; it never drops part of a stream (that would corrupt HTTP/2 header
 * compression), it only holds bytes back or cuts the connection. Loopback only.
 *
 * - `partition()`: nothing passes either way (the sockets stay open, as with a network partition);
 *   `heal()` lets held bytes through again.
 * - `delayRepliesAfter(pattern, ms)`: once a request carrying `pattern` (e.g. a key: protobuf keeps
 *   it verbatim) went up to etcd, every reply on that connection is held for `ms`: the request is
 *   applied, its answer comes after the caller's deadline (a reply lost, as the caller sees it).
 * - `resetAfter(pattern, ms)`: once such a request went up, replies are held and the connection is
 *   cut `ms` later: applied by etcd, the reply never arrives, the client sees UNAVAILABLE.
 */
export class EtcdLink {
  /** How many times an armed fault fired. */
  fired = 0;
  /** Requests seen carrying {@link countPattern} (counted whatever else happens to them). */
  counted = 0;
  /** Counts requests carrying this (e.g. a key) in {@link counted}. */
  countPattern: string | undefined;
  private partitioned = false;
  private trigger:
    { pattern: Buffer; ms: number; mode: 'delay' | 'reset'; onFire?: () => void } | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly flushes = new Set<() => void>();
  private readonly server: Server;
  private port = 0;

  private constructor(private readonly targetPort: number) {
    this.server = createServer((client) => this.bridge(client));
  }

  /** Starts a link on a free loopback port forwarding to `targetPort`. */
  static async start(targetPort: number): Promise<EtcdLink> {
    const link = new EtcdLink(targetPort);
    await new Promise<void>((r) => link.server.listen(0, '127.0.0.1', r));
    link.port = (link.server.address() as { port: number }).port;
    return link;
  }

  /** `http://127.0.0.1:<port>`: pass it as an etcd host. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Holds every byte in both directions until `heal()`. */
  partition(): void {
    this.partitioned = true;
  }

  /** Ends a partition (held bytes go through, in order) and disarms any trigger. */
  heal(): void {
    this.partitioned = false;
    this.trigger = undefined;
    for (const flush of [...this.flushes]) flush();
  }

  /** See the class comment. Fires once. */
  delayRepliesAfter(pattern: string, ms: number): void {
    this.trigger = { pattern: Buffer.from(pattern), ms, mode: 'delay' };
  }

  /** See the class comment. Fires once, then calls `onFire` (e.g. to disarm another link). */
  resetAfter(pattern: string, ms: number, onFire?: () => void): void {
    this.trigger = { pattern: Buffer.from(pattern), ms, mode: 'reset', onFire };
  }

  /** Disarms the trigger, if it has not fired. */
  disarm(): void {
    this.trigger = undefined;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
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
    /** Replies on this connection are held until this time (ms since epoch). */
    let repliesFrom = 0;
    const pipe = (from: Socket, to: Socket, up: boolean) => {
      const queue: Buffer[] = [];
      let timer: NodeJS.Timeout | undefined;
      const flush = () => {
        if (timer) clearTimeout(timer);
        timer = undefined;
        if (this.partitioned) return;
        const wait = up ? 0 : repliesFrom - Date.now();
        if (wait > 0) {
          // Held for good (a reset is coming): no timer (setTimeout caps its delay at 2^31 - 1 ms).
          if (wait < 2 ** 31 - 1) timer = setTimeout(flush, wait);
          return;
        }
        while (queue.length > 0 && to.writable) to.write(queue.shift()!);
      };
      this.flushes.add(flush);
      from.on('close', () => this.flushes.delete(flush));
      from.on('data', (chunk: Buffer) => {
        queue.push(chunk);
        if (up && this.countPattern && chunk.includes(this.countPattern)) this.counted += 1;
        const trigger = this.trigger;
        if (up && trigger && chunk.includes(trigger.pattern)) {
          this.trigger = undefined;
          this.fired += 1;
          trigger.onFire?.();
          repliesFrom = Date.now() + trigger.ms;
          if (trigger.mode === 'reset') {
            repliesFrom = Number.MAX_SAFE_INTEGER;
            setTimeout(() => {
              client.destroy();
              upstream.destroy();
            }, trigger.ms).unref();
          }
        }
        flush();
      });
    };
    pipe(client, upstream, true);
    pipe(upstream, client, false);
  }
}
