import { choosePermit, toPermitVote, votePermits, type PermitVote } from './permit-vote';

const answers =
  (votes: PermitVote[]) =>
  (i: number): Promise<PermitVote> =>
    Promise.resolve(votes[i]);
const grant = (permit: number, value = 10): PermitVote => ({ kind: 'for', value, permit });
const refused: PermitVote = { kind: 'refused' };
const failed: PermitVote = { kind: 'failed', error: new Error('down') };

describe('votePermits', () => {
  it('wins a permit granted by a majority', async () => {
    const tally = await votePermits(3, answers([grant(1), grant(0), grant(1)]));
    expect(tally).toMatchObject({ ok: true, winner: 1 });
  });

  it('never adds up grants of different permits (3 instances, 3 permits: no winner)', async () => {
    const tally = await votePermits(3, answers([grant(0), grant(1), grant(2)]));
    expect(tally).toMatchObject({ ok: false, winner: undefined });
    expect(tally.granted.size).toBe(3);
  });

  it('fails on a majority of refusals (every permit held) and on a majority failed', async () => {
    await expect(votePermits(3, answers([refused, refused, grant(0)]))).resolves.toMatchObject({
      ok: false,
      refused: 2,
    });
    await expect(votePermits(3, answers([failed, failed, grant(0)]))).resolves.toMatchObject({
      ok: false,
      failed: 2,
    });
  });

  it('wins on a single instance', async () => {
    await expect(votePermits(1, answers([grant(4)]))).resolves.toMatchObject({ winner: 4 });
  });
});

describe('choosePermit', () => {
  it('takes the permit granted most often', async () => {
    const tally = await votePermits(5, answers([grant(0), grant(2), grant(2), refused, refused]));
    expect(choosePermit(tally)).toBe(2);
  });

  it('breaks ties by the lowest instance, so tied contenders pick different permits', async () => {
    const x = await votePermits(3, answers([grant(0), grant(2), grant(1)]));
    const y = await votePermits(3, answers([grant(1), grant(0), grant(2)]));
    expect(choosePermit(x)).toBe(0);
    expect(choosePermit(y)).toBe(1);
  });

  it('has nothing to choose without grants', async () => {
    const tally = await votePermits(3, answers([refused, refused, refused]));
    expect(choosePermit(tally)).toBeUndefined();
  });
});

describe('toPermitVote', () => {
  it('reads the script reply', () => {
    expect(toPermitVote([2, 17])).toEqual({ kind: 'for', value: 17, permit: 2 });
    expect(toPermitVote(-1)).toEqual({ kind: 'refused' });
  });
});
