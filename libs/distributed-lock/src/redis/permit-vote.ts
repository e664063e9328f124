import type { Tally } from './quorum';

/** One instance's answer to a permit acquisition: which permit it granted, and its counter. @internal */
export type PermitVote =
  | { kind: 'for'; value: number; permit: number }
  | { kind: 'refused' }
  | { kind: 'failed'; error: unknown };

/** A permit vote when it was decided: a {@link Tally} of grants of any permit, and the winner. @internal */
export interface PermitTally extends Tally {
  /** Instance index → the permit it granted (for the grants in `granted`). */
  readonly permits: Map<number, number>;
  /** The permit a majority of instances granted, when one did. */
  readonly winner: number | undefined;
}

/**
 * Like `vote` (quorum.ts), for an acquisition where each instance grants whichever permit it has
 * free: won only when a majority granted the *same* permit (each permit is a Redlock lock of its
 * own; grants of different permits never add up). Resolves as soon as one permit has a majority,
 * or once no permit can reach one and the answers say why (contention, a split, or an outage).
 * @internal
 */
export function votePermits(
  total: number,
  ask: (index: number) => Promise<PermitVote>,
): Promise<PermitTally> {
  const quorum = Math.floor(total / 2) + 1;
  return new Promise((resolve) => {
    const granted = new Map<number, number>();
    const permits = new Map<number, number>();
    const counts = new Map<number, number>();
    let best = 0;
    let refused = 0;
    let failed = 0;
    let pending = total;
    let firstError: unknown;
    let decided = false;
    const refusedBy: boolean[] = new Array<boolean>(total).fill(false);
    const decide = (winner: number | undefined) => {
      decided = true;
      resolve({
        ok: winner !== undefined,
        total,
        quorum,
        granted,
        refused,
        failed,
        firstError,
        refusedBy,
        permits,
        winner,
      });
    };
    const count = (i: number, v: PermitVote) => {
      pending -= 1;
      if (decided) return;
      if (v.kind === 'for') {
        granted.set(i, v.value);
        permits.set(i, v.permit);
        const n = (counts.get(v.permit) ?? 0) + 1;
        counts.set(v.permit, n);
        if (n > best) best = n;
        if (n >= quorum) return decide(v.permit);
      } else if (v.kind === 'refused') {
        refused += 1;
        refusedBy[i] = true;
      } else {
        failed += 1;
        firstError ??= v.error;
      }
      if (best + pending >= quorum) return;
      const answered = granted.size + refused;
      if (answered >= quorum || answered + pending < quorum || pending === 0) decide(undefined);
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
 * The permit to settle on after a vote nobody won: the one granted most often, ties broken by the
 * lowest instance that granted it. Each instance gives every contender a different permit, so
 * contenders tied on counts pick different permits instead of all fighting over one.
 * @internal
 */
export function choosePermit(tally: PermitTally): number | undefined {
  const counts = new Map<number, number>();
  for (const permit of tally.permits.values()) counts.set(permit, (counts.get(permit) ?? 0) + 1);
  let chosen: number | undefined;
  let most = 0;
  for (const i of [...tally.permits.keys()].sort((a, b) => a - b)) {
    const permit = tally.permits.get(i)!;
    const n = counts.get(permit)!;
    if (n > most) {
      most = n;
      chosen = permit;
    }
  }
  return chosen;
}

/** The reply of the permit acquisition script as a vote. @internal */
export function toPermitVote(reply: unknown): PermitVote {
  if (Array.isArray(reply) && reply.length === 2) {
    const permit = Number(reply[0]);
    const token = Number(reply[1]);
    if (Number.isInteger(permit) && permit >= 0 && token > 0) {
      return { kind: 'for', value: token, permit };
    }
  }
  return { kind: 'refused' };
}
