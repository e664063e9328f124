import { setImmediate as hostSetImmediate } from 'node:timers';
import type { LockClient } from './redis-instances';
import { isCluster } from './redis-instances';

/**
 * `process.nextTick` as it was when the library loaded: a test that fakes timers after importing us
 * (jest fakes `nextTick` too) must not hold our socket writes until it advances its clock. A library
 * loaded while fake timers were installed (jest `fakeTimers.enableGlobally`) captured the fake one,
 * which may never run, so every cork is also released by `setImmediate` from `node:timers` (the
 * module's own function, which fake timers, patching the global, leave alone): whichever runs first
 * uncorks, the other does nothing.
 */
const nextTick = process.nextTick.bind(process);

/** The parts of an ioredis connection a batch looks at (`stream` and `commandQueue` are public fields). */
interface Corkable {
  status: string;
  stream?: { writable?: boolean; cork?: () => void; uncork?: () => void };
  commandQueue?: { length: number };
}

/**
 * Sends the commands written to one Redis connection within one turn of the event loop as one
 * socket write. At concurrency, one chunk of replies wakes many operations in the same turn, each
 * sending its next script; written one by one that is one write(2) per command, which the profile
 * (`npm run bench:profile`) showed to be most of the client's CPU per lock. So before a command goes
 * out on a connection that already waits for replies, its socket is corked until `process.nextTick`
 * (after the microtasks that send the others; `setImmediate` as a fallback), and Node sends the lot
 * in one writev. A connection with nothing in flight writes at once, so a lone operation waits for
 * nothing. Cluster clients (several sockets) are left as they are.
 *
 * Safe for the validity arithmetic: a lock's validity is timed from before its commands are sent, so
 * the few microseconds a command waits here only shorten the validity counted, never lengthen it.
 * @internal
 */
export class WriteBatch {
  private readonly connections: Array<Corkable | undefined>;
  /** Per instance: its socket is corked until the next tick. */
  private readonly corked: boolean[];

  constructor(clients: readonly LockClient[]) {
    this.connections = clients.map((c) => (isCluster(c) ? undefined : (c as unknown as Corkable)));
    this.corked = clients.map(() => false);
  }

  /** Call right before sending a command to instance `i`. */
  hold(i: number): void {
    if (this.corked[i]) return;
    const c = this.connections[i];
    if (c === undefined || c.status !== 'ready' || !c.commandQueue?.length) return;
    const stream = c.stream;
    if (!stream?.writable || typeof stream.cork !== 'function') return;
    this.corked[i] = true;
    stream.cork();
    let open = true;
    const flush = () => {
      if (!open) return;
      open = false;
      this.corked[i] = false;
      stream.uncork?.();
    };
    nextTick(flush);
    hostSetImmediate(flush);
  }
}
