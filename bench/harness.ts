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
 * Interleaves the cases: every round runs each case once (in rotating order) for `ms`, after a
 * warm-up round, so machine noise hits all cases alike.
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
    for (let k = 0; k < cases.length; k += 1) {
      const idx = (k + r) % cases.length;
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
