import {
  LockAdmin,
  LockLostError,
  LockUnavailableError,
  type LockEvent,
} from '@app/distributed-lock';
import { permitKey, tickClaimKey } from '@app/distributed-lock/backend/held-key';
import { LockManager } from '@app/distributed-lock/lock-manager';
import { aborted, type ContractContext } from './contract-context';

/**
 * The operations half of the contract (`LockAdmin`): what an operator sees (`list`) and frees
 * (`forceRelease`) on every backend, and what a force-release does to the stale holder: its signal
 * aborts on its next extension, its release never frees the next holder's lock, and every later
 * fencing token is higher than its own.
 */
export function adminContract(ctx: ContractContext): void {
  const { boot, harness, key, short } = ctx;

  /** The holder and an operator's app on the same store (one app where replicas cannot share one). */
  async function holderAndOperator() {
    const holder = await boot({}, { identity: 'holder-a' });
    const operator = harness.singleReplica ? holder : await boot({}, { identity: 'operator-b' });
    return { holder, operator, admin: operator.moduleRef.get(LockAdmin) };
  }

  describe('LockAdmin', () => {
    it('lists held locks, permits and tick claims with kind, identity, token and expiry', async () => {
      const { holder, admin } = await holderAndOperator();
      const base = key('list');
      const ttl = short(5_000);
      const before = Date.now();
      const lock = await holder.locks.acquire(`${base}:a`, { ttl });
      const permit = await holder.locks.acquire(permitKey(`${base}:p`, 2), { ttl });
      const at = Math.floor(Date.now() / 1000) * 1000;
      const claimed = await holder.moduleRef
        .get(LockManager)
        .claim(tickClaimKey(`${base}:cron`, at), ttl);
      expect(claimed).toBe(true);
      const outside = await holder.locks.acquire(key('elsewhere'), { ttl });

      const held = await admin.list({ prefix: base });
      expect(held.map((h) => [h.key, h.kind, h.permit])).toEqual([
        [`${base}:a`, 'lock', undefined],
        [`${base}:cron`, 'tick-claim', undefined],
        [`${base}:p`, 'lock', 2],
      ]);
      for (const h of held) {
        expect(h.store).toBe('default');
        expect(h.identity).toBe('holder-a');
        // etcd reports a lease's TTL in whole seconds: up to a second early.
        expect(h.expiresAt).toBeGreaterThan(before + ttl - 2_000);
        expect(h.expiresAt).toBeLessThanOrEqual(Date.now() + ttl + 1_000);
      }
      expect(held[0].fencingToken).toBe(lock.fencingToken);
      expect(held[2].fencingToken).toBe(permit.fencingToken);
      expect(JSON.stringify(held)).not.toMatch(/[0-9a-f]{32}/);

      const two = await admin.list({ prefix: base, limit: 2 });
      expect(two).toHaveLength(2);
      const id = (h: { key: string; kind: string; permit?: number }) =>
        `${h.key} ${h.kind} ${h.permit ?? 0}`;
      expect(held.map(id)).toEqual(expect.arrayContaining(two.map(id)));
      await lock.release();
      expect((await admin.list({ prefix: base })).map((h) => h.key)).toEqual([
        `${base}:cron`,
        `${base}:p`,
      ]);
      await permit.release();
      await outside.release();
    });

    it('force-releases: frees the key, fences the stale holder out, emits force-released', async () => {
      const { holder, operator, admin } = await holderAndOperator();
      const k = key('force');
      const stale = await holder.locks.acquire(k, { ttl: short(10_000) });
      const seen: LockEvent[] = operator.events;

      await expect(admin.forceRelease(k, { reason: 'INC-7: holder stuck' })).resolves.toBe(true);
      expect(seen.filter((e) => e.type === 'force-released')).toEqual([
        expect.objectContaining({
          type: 'force-released',
          keys: [k],
          store: 'default',
          reason: 'INC-7: holder stuck',
        }),
      ]);
      expect(await operator.locks.isLocked(k)).toBe(false);

      const next = await operator.locks.acquire(k, { ttl: short(10_000) });
      expect(next.fencingToken).toBeGreaterThan(stale.fencingToken);
      // The stale holder finds out on its next extension: lost, signal aborted.
      await expect(stale.extend()).rejects.toBeInstanceOf(LockLostError);
      expect(stale.signal.aborted).toBe(true);
      // ... and its late release never frees the next holder's lock.
      await stale.release().catch(() => undefined);
      expect(await operator.locks.isLocked(k)).toBe(true);
      expect((await admin.list({ prefix: k })).map((h) => h.fencingToken)).toEqual([
        next.fencingToken,
      ]);
      await next.release();

      await expect(admin.forceRelease(k)).resolves.toBe(false);
      expect(seen.filter((e) => e.type === 'force-released')).toHaveLength(1);
    });

    if (harness.fenceCounters) {
      const fenceCounters = harness.fenceCounters.bind(harness);
      it('advances the fencing counter in the force release itself, before any later acquisition', async () => {
        const { holder, admin } = await holderAndOperator();
        const k = key('fence-advance');
        const stale = await holder.locks.acquire(k, { ttl: short(10_000) });
        const before = await fenceCounters(k);
        expect(before.length).toBeGreaterThan(0);
        for (const counter of before) expect(counter).toBeGreaterThanOrEqual(stale.fencingToken);

        await expect(admin.forceRelease(k)).resolves.toBe(true);
        // Read before anyone acquires again: the release alone moved every counter past the stale token.
        const after = await fenceCounters(k);
        expect(after).toHaveLength(before.length);
        for (const counter of after) expect(counter).toBeGreaterThan(stale.fencingToken);
        await stale.release().catch(() => undefined);
      });
    }

    it("aborts a running holder's signal at its next auto-extension, and its release never frees the next holder", async () => {
      const { holder, operator, admin } = await holderAndOperator();
      const k = key('running');
      const ttl = short(1_000);
      let signal: AbortSignal | undefined;
      let token = 0;
      let started!: () => void;
      const running = new Promise<void>((resolve) => (started = resolve));
      const work = holder.locks.runExclusive(
        k,
        async (lock) => {
          signal = lock.signal;
          token = lock.fencingToken;
          started();
          await aborted(lock.signal, 4 * ttl + 2_000);
          return 'stopped';
        },
        { ttl },
      );
      await running;
      expect(await admin.forceRelease(k)).toBe(true);
      const next = await operator.locks.acquire(k, { ttl: short(10_000) });
      expect(next.fencingToken).toBeGreaterThan(token);
      // runExclusive releases in `finally` once the work stops: that release finds the lock lost.
      await expect(work).resolves.toBe('stopped');
      expect(signal?.aborted).toBe(true);
      expect(await operator.locks.isLocked(k)).toBe(true);
      await next.release();
    });

    it('fails closed when the store cannot answer: list and forceRelease throw LockUnavailableError', async () => {
      const { holder, admin } = await holderAndOperator();
      const k = key('down');
      const lock = await holder.locks.acquire(k, { ttl: short(10_000) });
      await harness.makeUnavailable();
      const start = Date.now();
      await expect(admin.list({ prefix: k })).rejects.toBeInstanceOf(LockUnavailableError);
      // Another key: a force-release that timed out may still run once the store resumes.
      await expect(admin.forceRelease(key('other'))).rejects.toBeInstanceOf(LockUnavailableError);
      expect(Date.now() - start).toBeLessThan(15_000);
      await harness.restore();
      expect((await admin.list({ prefix: k })).map((h) => h.key)).toEqual([k]);
      await lock.release();
    });
  });
}
