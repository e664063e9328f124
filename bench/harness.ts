import { performance } from 'node:perf_hooks';

/** One measured case: `op` is one complete operation (e.g. acquire + release) for worker `w`. */
export interface BenchCase {
  name: string;
  group: string;
  concurrency: number;
  op: (worker: number, i: number) => Promise<unknown>;
}

/** Collected samples of one case across rounds. */
export interface CaseResult {
  name: string;
  group: string;
  concurrency: number;
  ops: number;
  seconds: number;
  latencies: number[];
}

/** Runs `c` with `c.concurrency` workers for `ms` milliseconds; returns ops and per-op latencies. */
async function window(
  c: BenchCase,
  ms: number,
): Promise<{ ops: number; seconds: number; latencies: number[] }> {
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: c.concurrency }, async (_, w) => {
      for (let i = 0; performance.now() < end; i += 1) {
        const t = performance.now();
        await c.op(w, i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { ops: latencies.length, seconds: (performance.now() - start) / 1000, latencies };
}

/**
 * A permutation of 0..n-1 drawn from `seed` (a fixed xorshift, so every run uses the same orders):
 * each round gets its own, so no case always follows the same neighbour (whose garbage, timers or
 * socket state it would otherwise always inherit).
 */
function shuffled(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  let x = (seed + 1) * 0x9e3779b1;
  for (let i = n - 1; i > 0; i -= 1) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/**
 * Interleaves the cases: every round runs each case once for `ms`, in a different shuffled order
 * each round, after a warm-up round, so machine noise and the neighbouring cases hit all alike.
 */
export async function interleave(
  cases: BenchCase[],
  rounds: number,
  ms: number,
): Promise<CaseResult[]> {
  const results = cases.map<CaseResult>((c) => ({
    name: c.name,
    group: c.group,
    concurrency: c.concurrency,
    ops: 0,
    seconds: 0,
    latencies: [],
  }));
  for (const c of cases) await window(c, Math.min(ms, 300)); // warm-up: JIT, script cache, connections
  for (let r = 0; r < rounds; r += 1) {
    for (const idx of shuffled(cases.length, r)) {
      const w = await window(cases[idx], ms);
      const res = results[idx];
      res.ops += w.ops;
      res.seconds += w.seconds;
      for (const l of w.latencies) res.latencies.push(l);
    }
  }
  return results;
}

/** The q-quantile (0..1) of `values`. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Write batching by hand, as redis/write-batch.ts does it for the library: call the returned
 * function before each command sent on `client`; the first of a turn corks its socket and the next
 * tick sends them all in one write.
 */
export function batchPerTurn(client: { stream: { cork(): void; uncork(): void } }): () => void {
  let held = false;
  return () => {
    if (held) return;
    held = true;
    const stream = client.stream;
    stream.cork();
    process.nextTick(() => {
      held = false;
      stream.uncork();
    });
  };
}

/** Resolves once `need` of `promises` fulfilled; rejects once that became impossible. */
export function majority<T>(promises: Promise<T>[], need: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let ok = 0;
    let bad = 0;
    for (const p of promises) {
      p.then(
        () => {
          ok += 1;
          if (ok === need) resolve();
        },
        (e: unknown) => {
          bad += 1;
          if (bad > promises.length - need) reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    }
  });
}
