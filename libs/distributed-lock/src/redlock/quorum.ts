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
}

/**
 * Asks every instance at once and resolves as soon as the outcome is certain: success at a majority
 * of grants; failure once a majority can no longer grant, but only when it can also say why (a
 * majority answered, so it is contention; or too few can answer, so it is an outage), waiting for
 * the slow voters only in between. `late` is told of grants that arrive after a failure was decided,
 * so they can be undone.
 * @internal
 */
export function vote(
  total: number,
  ask: (index: number) => Promise<Vote>,
  late?: (index: number) => void,
): Promise<Tally> {
  const quorum = Math.floor(total / 2) + 1;
  return new Promise((resolve) => {
    const granted = new Map<number, number>();
    let refused = 0;
    let failed = 0;
    let pending = total;
    let firstError: unknown;
    let decided: boolean | undefined;
    const decide = (ok: boolean) => {
      decided = ok;
      // Votes after the decision no longer touch `granted` (see `count`), so no copy is needed.
      resolve({ ok, total, quorum, granted, refused, failed, firstError });
    };
    const count = (i: number, v: Vote) => {
      pending -= 1;
      if (decided !== undefined) {
        if (v.kind === 'for' && decided === false) late?.(i);
        return;
      }
      if (v.kind === 'for') granted.set(i, v.value);
      else if (v.kind === 'refused') refused += 1;
      else {
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
