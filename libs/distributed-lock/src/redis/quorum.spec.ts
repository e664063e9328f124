import { vote, type Vote } from './quorum';

/** Answers scripted per instance: a vote, or `null` for one that never answers. */
function asker(answers: Array<Vote | null>) {
  return (i: number) =>
    answers[i] === null ? new Promise<Vote>(() => undefined) : Promise.resolve(answers[i]);
}
const yes: Vote = { kind: 'for', value: 7 };
const no: Vote = { kind: 'refused' };
const down: Vote = { kind: 'failed', error: new Error('down') };

describe('vote (Redlock quorum)', () => {
  it('succeeds at a majority without waiting for the slow voter', async () => {
    const tally = await vote(3, asker([yes, yes, null]));
    expect(tally).toMatchObject({ ok: true, quorum: 2, refused: 0, failed: 0 });
    expect([...tally.granted.keys()]).toEqual([0, 1]);
  });

  it('fails as busy once a majority answered and cannot grant', async () => {
    const tally = await vote(3, asker([no, no, null]));
    expect(tally).toMatchObject({ ok: false, refused: 2 });
    expect(tally.refusedBy).toEqual([true, true, false]);
  });

  it('waits for the slow voter when the outcome is still open', async () => {
    let answer!: (v: Vote) => void;
    const slow = new Promise<Vote>((r) => (answer = r));
    const pending = vote(3, (i) => (i === 2 ? slow : Promise.resolve(i === 0 ? yes : no)));
    let settled = false;
    void pending.then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    answer(yes);
    expect((await pending).ok).toBe(true);
  });

  it('fails as an outage when too few can answer, and keeps the first error', async () => {
    const tally = await vote(3, asker([down, down, null]));
    expect(tally).toMatchObject({ ok: false, failed: 2, refused: 0 });
    expect((tally.firstError as Error).message).toBe('down');
  });

  it('records which instances refused before the decision, for undoing a failed vote everywhere else', async () => {
    // Decided after four answers (1 grant + 1 pending cannot reach 3): the fifth refusal comes after
    // the decision, so that instance is undone too (a harmless no-op there).
    const tally = await vote(5, asker([yes, no, down, no, no]));
    expect(tally.ok).toBe(false);
    expect(tally.refusedBy).toEqual([false, true, false, true, false]);
  });

  it('counts a thrown ask as failed', async () => {
    const tally = await vote(1, () => Promise.reject(new Error('boom')));
    expect(tally).toMatchObject({ ok: false, failed: 1 });
  });
});

describe('vote on one instance (the fast path)', () => {
  it('a grant, a refusal, a failure and a rejected ask: the same tally the majority rule gives', async () => {
    expect(await vote(1, asker([yes]))).toEqual({
      ok: true,
      total: 1,
      quorum: 1,
      granted: new Map([[0, 7]]),
      refused: 0,
      failed: 0,
      firstError: undefined,
      refusedBy: [false],
    });
    expect(await vote(1, asker([no]))).toEqual({
      ok: false,
      total: 1,
      quorum: 1,
      granted: new Map(),
      refused: 1,
      failed: 0,
      firstError: undefined,
      refusedBy: [true],
    });
    const failed = await vote(1, asker([down]));
    expect(failed).toMatchObject({ ok: false, refused: 0, failed: 1, refusedBy: [false] });
    expect((failed.firstError as Error).message).toBe('down');
    const rejected = await vote(1, () => Promise.reject(new Error('reset')));
    expect(rejected).toMatchObject({ ok: false, refused: 0, failed: 1, refusedBy: [false] });
    expect((rejected.firstError as Error).message).toBe('reset');
  });

  it('an ask that throws: a rejected vote, never a synchronous throw', async () => {
    const tally = vote(1, () => {
      throw new Error('sync');
    });
    await expect(tally).rejects.toThrow('sync');
  });
});
