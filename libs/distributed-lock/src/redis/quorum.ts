/** One instance's answer to one operation. @internal */
export type Vote =
  { kind: 'for'; value: number } | { kind: 'refused' } | { kind: 'failed'; error: unknown };

/** How the instances voted when the outcome was decided. @internal */
export interface Tally {
  readonly ok: boolean;
  readonly total: number;
  readonly quorum: number;
  /** Instance index → value returned by the instances that granted, at decision time. */
  readonly granted: Map<number, number>;
  readonly refused: number;
  readonly failed: number;
  readonly firstError: unknown;
  /**
   * Instance index → true when it answered "refused" before the decision. Every other instance may
   * hold (or may still come to hold) what was asked for: a failed operation is undone on all of them.
   */
  readonly refusedBy: boolean[];
}

/**
 * Asks every instance at once and resolves as soon as the outcome is certain: success at a majority
 * of grants; failure once a majority can no longer grant, but only when it can also say why (a
 * majority answered, so it is contention; or too few can answer, so it is an outage), waiting for
 * the slow voters only in between. Undoing a failure is the caller's job (`Tally.refusedBy`).
 * @internal
 */
export function vote(total: number, ask: (index: number) => Promise<Vote>): Promise<Tally> {
  if (total === 1) return voteOne(ask);
  const quorum = Math.floor(total / 2) + 1;
  return new Promise((resolve) => {
    const granted = new Map<number, number>();
    let refused = 0;
    let failed = 0;
    let pending = total;
    let firstError: unknown;
    let decided = false;
    const refusedBy: boolean[] = new Array<boolean>(total).fill(false);
    const decide = (ok: boolean) => {
      decided = true;
      // Votes after the decision no longer touch the tally (see `count`), so no copy is needed.
      resolve({ ok, total, quorum, granted, refused, failed, firstError, refusedBy });
    };
    const count = (i: number, v: Vote) => {
      pending -= 1;
      if (decided) return;
      if (v.kind === 'for') granted.set(i, v.value);
      else if (v.kind === 'refused') {
        refused += 1;
        refusedBy[i] = true;
      } else {
        failed += 1;
        firstError ??= v.error;
      }
      if (granted.size >= quorum) return decide(true);
      if (granted.size + pending >= quorum) return;
      const answered = granted.size + refused;
      if (answered >= quorum || answered + pending < quorum || pending === 0) decide(false);
    };
    for (let i = 0; i < total; i += 1) {
      ask(i).then(
        (v) => count(i, v),
        (error: unknown) => count(i, { kind: 'failed', error }),
      );
    }
  });
}

/**
 * `vote` on one instance: its answer is the outcome, so no tally is kept while waiting (the same
 * Tally the majority rule gives, without its promise, closures and bookkeeping per operation).
 */
function voteOne(ask: (index: number) => Promise<Vote>): Promise<Tally> {
  let answer: Promise<Vote>;
  try {
    answer = ask(0);
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
  return answer.then(tallyOfOne, (error: unknown) => tallyOfOne({ kind: 'failed', error }));
}

function tallyOfOne(v: Vote): Tally {
  const granted = new Map<number, number>();
  if (v.kind === 'for') granted.set(0, v.value);
  return {
    ok: v.kind === 'for',
    total: 1,
    quorum: 1,
    granted,
    refused: v.kind === 'refused' ? 1 : 0,
    failed: v.kind === 'failed' ? 1 : 0,
    firstError: v.kind === 'failed' ? v.error : undefined,
    refusedBy: [v.kind === 'refused'],
  };
}
