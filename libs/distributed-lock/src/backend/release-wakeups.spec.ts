import { ReleaseWakeups } from './release-wakeups';

describe('ReleaseWakeups', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('wakes the sleeps on a released key only, and forgets them', async () => {
    const wakeups = new ReleaseWakeups();
    const ended: string[] = [];
    const a = wakeups.sleep(['a'], 10_000, () => ended.push('a'));
    const ab = wakeups.sleep(['a', 'b'], 10_000, () => ended.push('ab'));
    const b = wakeups.sleep(['b'], 10_000, () => ended.push('b'));
    expect(wakeups.size).toBe(3);
    wakeups.wake('a');
    await Promise.all([a, ab]);
    expect(ended).toEqual(['a', 'ab']);
    expect(wakeups.isWatched('a')).toBe(false);
    expect(wakeups.isWatched('b')).toBe(true);
    expect(wakeups.size).toBe(1);
    wakeups.wakeAll();
    await b;
    expect(ended).toEqual(['a', 'ab', 'b']);
    expect(wakeups.size).toBe(0);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('ends a sleep at its timeout, once, and clears its timer when woken first', async () => {
    const wakeups = new ReleaseWakeups();
    let ends = 0;
    const slept = wakeups.sleep(['k'], 500, () => (ends += 1));
    jest.advanceTimersByTime(499);
    expect(wakeups.size).toBe(1);
    jest.advanceTimersByTime(1);
    await slept;
    wakeups.wake('k');
    expect(ends).toBe(1);
    const woken = wakeups.sleep(['k'], 500);
    wakeups.wake('k');
    await woken;
    expect(jest.getTimerCount()).toBe(0);
  });
});
