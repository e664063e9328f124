import {
  LockBusyError,
  LockLostError,
  LockUnavailableError,
  type Lock,
} from '@app/distributed-lock';
import { aborted, delay, eventually, type ContractContext } from './contract-context';

/** The `LockService` half of the contract. */
export function lockServiceContract(ctx: ContractContext): void {
  const { boot, bound, harness, holdElsewhere, key, short } = ctx;

  describe('LockService', () => {
    it('acquires, reports the key locked, and releases (idempotently)', async () => {
      const { locks } = await boot();
      const k = key('basic');
      const before = Date.now();
      const lock = await locks.acquire(k, { ttl: 5_000 });
      expect(lock.keys).toEqual([k]);
      expect(lock.fencingToken).toBeGreaterThan(0);
      expect(lock.expiresAt).toBeGreaterThan(before + 4_000);
      expect(lock.expiresAt).toBeLessThanOrEqual(Date.now() + 5_000);
      expect(await locks.isLocked(k)).toBe(true);
      await expect(locks.tryAcquire(k)).resolves.toBeNull();
      await lock.release();
      await lock.release();
      expect(lock.signal.aborted).toBe(true);
      expect(await locks.isLocked(k)).toBe(false);
      const again = await locks.tryAcquire(k);
      expect(again?.fencingToken).toBeGreaterThan(lock.fencingToken);
      await again?.release();
    });

    it('tells busy from unavailable: tryAcquire resolves null when busy and throws when down', async () => {
      const { locks } = await boot({}, { retry: { count: 1, delay: 50 } });
      const k = key('busy');
      await holdElsewhere(k);
      await expect(locks.tryAcquire(k)).resolves.toBeNull();
      await expect(locks.acquire(k)).rejects.toBeInstanceOf(LockBusyError);
      await expect(locks.acquire(k, { wait: 300 })).rejects.toMatchObject({
        name: 'LockBusyError',
        keys: [k],
      });

      await harness.makeUnavailable();
      const free = key('free');
      await expect(locks.tryAcquire(free)).rejects.toBeInstanceOf(LockUnavailableError);
      await expect(locks.tryAcquire(k)).rejects.toBeInstanceOf(LockUnavailableError);
      await expect(locks.acquire(free, { wait: 5_000 })).rejects.toBeInstanceOf(
        LockUnavailableError,
      );
      await expect(locks.isLocked(k)).rejects.toBeInstanceOf(LockUnavailableError);
      await expect(locks.runExclusive(free, () => 'ran')).rejects.toBeInstanceOf(
        LockUnavailableError,
      );

      await harness.restore();
      await expect(locks.runExclusive(free, () => 'ran')).resolves.toBe('ran');
      await expect(locks.tryAcquire(k)).resolves.toBeNull();
    });

    it('waits for a lock held elsewhere and gets it, with a higher token, once its TTL passes', async () => {
      const { locks } = await boot();
      const k = key('wait');
      const elsewhere = await holdElsewhere(k, short(300));
      const lock = await locks.acquire(k, { wait: bound(3_000, 300) });
      expect(lock.fencingToken).toBeGreaterThan(elsewhere);
      await lock.release();
    });

    it('expires a lock that is not extended: the signal aborts, extend throws LockLostError, others take it', async () => {
      const { locks, events } = await boot();
      const k = key('expiry');
      const lock = await locks.acquire(k, { ttl: short(300) });
      const reason = await aborted(lock.signal, bound(1_000, 300));
      expect(reason).toBeInstanceOf(LockLostError);
      expect(events.filter((e) => e.type === 'lost')).toMatchObject([
        { keys: [k], reason: 'expired' },
      ]);
      expect(await eventually(async () => !(await locks.isLocked(k)), bound(500, 300))).toBe(true);
      await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
      const next = await locks.tryAcquire(k);
      expect(next?.fencingToken).toBeGreaterThan(lock.fencingToken);
      await next?.release();
    });

    it('loses a lock whose key disappears, and its stale release never frees the next holder', async () => {
      const { locks } = await boot();
      const k = key('lost');
      const stale = await locks.acquire(k, { ttl: 10_000 });
      const { signal } = stale;
      await harness.dropKey(k);
      await expect(stale.extend()).rejects.toBeInstanceOf(LockLostError);
      expect(signal.aborted).toBe(true);
      expect(signal.reason).toBeInstanceOf(LockLostError);

      const next = await locks.acquire(k, { ttl: 10_000 });
      expect(next.fencingToken).toBeGreaterThan(stale.fencingToken);
      await expect(stale.release()).rejects.toBeInstanceOf(LockLostError);
      expect(await locks.isLocked(k)).toBe(true);
      await expect(locks.tryAcquire(k)).resolves.toBeNull();
      await next.release();
      expect(await locks.isLocked(k)).toBe(false);
    });

    it('aborts the signal of running work whose key disappears', async () => {
      const { locks, events } = await boot();
      const k = key('lost-running');
      const reason = await locks.runExclusive(
        k,
        async (lock) => {
          await harness.dropKey(k);
          return aborted(lock.signal, 2_000); // at the next extension at the latest (TTL / 2)
        },
        { ttl: 1_000 },
      );
      expect(reason).toBeInstanceOf(LockLostError);
      expect(events.filter((e) => e.type === 'lost')).toMatchObject([{ keys: [k] }]);
    });

    it('issues strictly increasing fencing tokens across holders, concurrent ones included', async () => {
      const { locks } = await boot();
      const k = key('fence');
      const tokens: number[] = [];
      const first = await locks.acquire(k);
      tokens.push(first.fencingToken);
      await first.release();
      tokens.push(await holdElsewhere(k, short(200)));
      const multi = await locks.acquire([k, key('fence-other')], { wait: bound(3_000, 200) });
      tokens.push(multi.fencingToken);
      await multi.release();
      await Promise.all(
        Array.from({ length: 5 }, () =>
          locks.runExclusive(
            k,
            async (lock) => {
              tokens.push(lock.fencingToken);
              await delay(5);
            },
            { wait: 10_000 },
          ),
        ),
      );
      expect(tokens).toHaveLength(8);
      for (let i = 1; i < tokens.length; i += 1) {
        expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);
      }
    });

    it('keeps a runExclusive lock alive across 3 × TTL by auto-extension, then releases it', async () => {
      const { locks, events } = await boot();
      const k = key('extend');
      const seen = await locks.runExclusive(
        k,
        async (lock) => {
          await delay(3_200);
          return {
            aborted: lock.signal.aborted,
            locked: await locks.isLocked(k),
            other: await locks.tryAcquire(k),
            expiresAt: lock.expiresAt,
          };
        },
        { ttl: 1_000 },
      );
      expect(seen).toMatchObject({ aborted: false, locked: true, other: null });
      expect(seen.expiresAt).toBeGreaterThan(Date.now());
      expect(events.filter((e) => e.type === 'extended').length).toBeGreaterThanOrEqual(3);
      expect(await locks.isLocked(k)).toBe(false);
    });

    it('takes several keys all or none', async () => {
      const { locks } = await boot();
      const [a, b, c] = [key('a'), key('b'), key('c')];
      await holdElsewhere(b);
      await expect(locks.tryAcquire([a, b])).resolves.toBeNull();
      await expect(locks.acquire([a, b])).rejects.toBeInstanceOf(LockBusyError);
      expect(await locks.isLocked(a)).toBe(false);

      const ac: Lock = await locks.acquire([a, c]);
      expect(ac.keys).toEqual([a, c]);
      expect(await locks.isLocked(a)).toBe(true);
      expect(await locks.isLocked(c)).toBe(true);
      await expect(locks.tryAcquire([c, key('d')])).resolves.toBeNull();
      await ac.release();
      expect(await locks.isLocked(a)).toBe(false);
      expect(await locks.isLocked(c)).toBe(false);
    });

    it('emits acquired, busy, unavailable and released events with keys and tokens', async () => {
      const { locks, events } = await boot();
      const k = key('events');
      const lock = await locks.acquire(k);
      await expect(locks.tryAcquire(k)).resolves.toBeNull();
      await lock.release();
      await harness.makeUnavailable();
      await expect(locks.tryAcquire(k)).rejects.toBeInstanceOf(LockUnavailableError);
      await harness.restore();
      expect(events.map((e) => e.type)).toEqual(['acquired', 'busy', 'released', 'unavailable']);
      expect(events[0]).toMatchObject({ keys: [k], fencingToken: lock.fencingToken });
      expect(events[2]).toMatchObject({ keys: [k], fencingToken: lock.fencingToken });
      for (const e of events) expect(e.at).toBeGreaterThan(Date.now() - 60_000);
    });
  });
}
