import { InvalidLockArgumentError } from '../errors/invalid-lock-argument.error';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockLostError } from '../errors/lock-lost.error';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import { InMemoryLockBackend } from './in-memory.backend';

describe('InMemoryLockBackend', () => {
  let store: InMemoryLockBackend;
  beforeEach(() => {
    jest.useFakeTimers();
    store = new InMemoryLockBackend();
  });
  afterEach(async () => {
    await store.close();
    jest.useRealTimers();
  });

  it('issues per-key tokens above every earlier token of each key, also for multi-key locks', async () => {
    const a1 = await store.acquire(['a'], 1_000);
    await store.release(a1, ['a']);
    const elsewhere = store.holdElsewhere('b', 10);
    jest.advanceTimersByTime(10);
    const ab = await store.acquire(['a', 'b'], 1_000);
    expect(ab.fencingToken).toBeGreaterThan(Math.max(a1.fencingToken, elsewhere));
    await store.release(ab, ['a', 'b']);
    const a2 = await store.acquire(['a'], 1_000);
    expect(a2.fencingToken).toBeGreaterThan(ab.fencingToken);
    expect(a2.deadline).toBe(performance.now() + 1_000);
    expect(a2.validity).toBe(1_000);
  });

  it('takes all keys or none', async () => {
    store.holdElsewhere('b');
    await expect(store.acquire(['a', 'b'], 1_000)).rejects.toBeInstanceOf(LockBusyError);
    expect(await store.isLocked('a')).toBe(false);
  });

  it('extends and releases only while the keys are still this lock', async () => {
    const lock = await store.acquire(['a'], 1_000);
    jest.advanceTimersByTime(900);
    const extended = await store.extend(lock, ['a'], 1_000);
    jest.advanceTimersByTime(900);
    expect(await store.isLocked('a')).toBe(true);
    jest.advanceTimersByTime(100);
    expect(await store.isLocked('a')).toBe(false);
    await expect(store.extend(extended, ['a'], 1_000)).rejects.toBeInstanceOf(LockLostError);
    const next = await store.acquire(['a'], 1_000);
    await expect(store.release(extended, ['a'])).rejects.toBeInstanceOf(LockLostError);
    store.discard(extended, ['a']);
    expect(await store.isLocked('a')).toBe(true);
    await store.release(next, ['a']);
    expect(await store.isLocked('a')).toBe(false);
  });

  it('claims a key for its TTL without a fencing token, once', async () => {
    expect(await store.claim('tick', 1_000)).toBe(true);
    expect(await store.claim('tick', 1_000)).toBe(false);
    await expect(store.acquire(['tick'], 1_000)).rejects.toBeInstanceOf(LockBusyError);
    jest.advanceTimersByTime(1_000);
    expect(await store.claim('tick', 1_000)).toBe(true);
    expect(store.holdElsewhere('other')).toBe(1);
  });

  it('expire() frees every key of the lease holding the key, and only that lease', async () => {
    const ab = await store.acquire(['a', 'b'], 1_000);
    const c = await store.acquire(['c'], 1_000);
    expect(store.expire('b').sort()).toEqual(['a', 'b']);
    expect(await store.isLocked('a')).toBe(false);
    expect(await store.isLocked('c')).toBe(true);
    expect(store.expire('b')).toEqual([]);
    await expect(store.release(ab, ['a', 'b'])).rejects.toBeInstanceOf(LockLostError);
    await store.release(c, ['c']);
  });

  it('holdElsewhere refuses a held key and invalid TTLs', async () => {
    await store.acquire(['a'], 1_000);
    expect(() => store.holdElsewhere('a')).toThrow(LockBusyError);
    expect(() => store.holdElsewhere('b', 0)).toThrow(InvalidLockArgumentError);
    expect(() => store.holdElsewhere('b', 1.5)).toThrow(InvalidLockArgumentError);
  });

  it('during an outage every call throws LockUnavailableError, discard keeps the lock, health is down', async () => {
    const lock = await store.acquire(['a'], 1_000);
    store.setUnavailable(true);
    expect(await store.health()).toEqual({ instances: 1, up: 0, quorum: 1 });
    const calls = [
      store.acquire(['b'], 1_000),
      store.extend(lock, ['a'], 1_000),
      store.release(lock, ['a']),
      store.claim('t', 1_000),
      store.isLocked('a'),
    ];
    for (const call of calls) await expect(call).rejects.toBeInstanceOf(LockUnavailableError);
    await expect(store.acquire(['b'], 1_000)).rejects.toMatchObject({
      keys: ['b'],
      votes: { total: 1, quorum: 1, failed: 1 },
    });
    store.discard(lock, ['a']);
    store.setUnavailable(false);
    expect(await store.health()).toEqual({ instances: 1, up: 1, quorum: 1 });
    expect(await store.isLocked('a')).toBe(true);
    expect(store.reset()).toEqual(['a']);
    expect(await store.isLocked('a')).toBe(false);
  });

  describe('waitForRelease', () => {
    const settledAfter = async (wait: Promise<void>, act: () => void | Promise<void>) => {
      let done = false;
      void wait.then(() => (done = true));
      await act();
      await Promise.resolve();
      return done;
    };

    it('wakes on a release of one of the keys, not of another key', async () => {
      const a = await store.acquire(['a'], 10_000);
      const c = await store.acquire(['c'], 10_000);
      const wait = store.waitForRelease(['a', 'b'], 5_000);
      expect(await settledAfter(wait, () => store.release(c, ['c']))).toBe(false);
      expect(await settledAfter(wait, () => store.release(a, ['a']))).toBe(true);
    });

    it('wakes on expire() and reset(), and when the key reaches its TTL before the timeout', async () => {
      store.holdElsewhere('a');
      expect(
        await settledAfter(store.waitForRelease(['a'], 5_000), () => void store.expire('a')),
      ).toBe(true);
      store.holdElsewhere('a');
      expect(await settledAfter(store.waitForRelease(['a'], 5_000), () => void store.reset())).toBe(
        true,
      );
      store.holdElsewhere('a', 300);
      const wait = store.waitForRelease(['a'], 5_000);
      expect(await settledAfter(wait, () => jest.advanceTimersByTimeAsync(299))).toBe(false);
      expect(await settledAfter(wait, () => jest.advanceTimersByTimeAsync(1))).toBe(true);
    });

    it('resolves after the timeout at the latest, and on close, leaving no timer behind', async () => {
      store.holdElsewhere('a');
      const wait = store.waitForRelease(['a'], 200);
      expect(await settledAfter(wait, () => jest.advanceTimersByTimeAsync(199))).toBe(false);
      expect(await settledAfter(wait, () => jest.advanceTimersByTimeAsync(1))).toBe(true);
      void store.waitForRelease(['a'], 60_000);
      expect(jest.getTimerCount()).toBe(1);
      await store.close();
      expect(jest.getTimerCount()).toBe(0);
    });
  });
});
