import { Controller, Injectable, Param, Post } from '@nestjs/common';
import { Interval } from '@nestjs/schedule';
import request from 'supertest';
import {
  DistributedLockConfigError,
  Exclusive,
  InvalidLockArgumentError,
  LockBusyError,
  LockLostError,
  type Lock,
  type LockService,
} from '@app/distributed-lock';
import { permitKey } from '@app/distributed-lock/backend/held-key';
import { aborted, delay, eventually, type ContractContext } from './contract-context';

/** How many `@Exclusive({ limit: 2 })` runs are inside the route at once, and the most seen. */
const route = { inside: 0, most: 0, ran: 0 };

@Controller('exports')
class LimitedExportsController {
  @Post(':id')
  @Exclusive({ key: (id: string) => `export:${id}`, limit: 2 })
  async export(@Param('id') id: string): Promise<{ exported: string }> {
    route.inside += 1;
    route.most = Math.max(route.most, route.inside);
    route.ran += 1;
    await delay(600);
    route.inside -= 1;
    return { exported: id };
  }
}

@Injectable()
class LimitedInterval {
  @Interval('contract-limited', 3_600_000)
  @Exclusive({ key: 'contract-limited', limit: 2 })
  tick(): void {}
}

/** Runs `work` on `workers` concurrent callers, each `rounds` times; max holders seen at once. */
async function occupancy(
  callers: LockService[],
  key: string,
  limit: number,
  rounds: number,
  hold: number,
): Promise<{ most: number; runs: number; permits: Set<number> }> {
  let inside = 0;
  let most = 0;
  let runs = 0;
  const permits = new Set<number>();
  await Promise.all(
    callers.map(async (locks) => {
      for (let r = 0; r < rounds; r += 1) {
        await locks.runExclusive(
          key,
          async (lock) => {
            inside += 1;
            most = Math.max(most, inside);
            permits.add(lock.permit);
            runs += 1;
            await delay(hold);
            inside -= 1;
          },
          { limit, wait: 20_000, ttl: 5_000 },
        );
      }
    }),
  );
  return { most, runs, permits };
}

/**
 * The concurrency-limit half of the contract (api.md, "Concurrency limits"): up to `limit` holders
 * of one key, each on its own permit `permitKey(key, i)`, with everything else as for a mutex.
 */
export function limitsContract(ctx: ContractContext): void {
  const { boot, bootHttp, bound, harness, key, short } = ctx;
  /**
   * Two replicas on one store: a second app where replicas share the store; the in-memory store is
   * one per app (its harness drives other replicas through `holdElsewhere`), so there both are one.
   */
  const twoReplicas = async (options = {}) => {
    const a = await boot({}, options);
    return [a, harness.holdElsewhere ? a : await boot({}, options)] as const;
  };

  describe('concurrency limits', () => {
    it('grants up to limit holders on distinct permits, then reports busy', async () => {
      const { locks, events } = await boot({}, { retry: { count: 1, delay: 20 } });
      const k = key('limit');
      const held: Lock[] = [];
      for (let i = 0; i < 3; i += 1) held.push(await locks.acquire(k, { limit: 3, ttl: 10_000 }));
      expect(held.map((l) => l.permit).sort()).toEqual([0, 1, 2]);
      expect(held.every((l) => l.fencingToken > 0)).toBe(true);
      await expect(locks.tryAcquire(k, { limit: 3 })).resolves.toBeNull();
      await expect(locks.acquire(k, { limit: 3, wait: 0 })).rejects.toBeInstanceOf(LockBusyError);
      await expect(locks.runExclusive(k, () => 'ran', { limit: 3, wait: 0 })).rejects.toMatchObject(
        { name: 'LockBusyError', keys: [k] },
      );
      expect(await locks.isLocked(k)).toBe(true);
      const acquired = events.filter((e) => e.type === 'acquired');
      expect(acquired.map((e) => (e as { permit?: number }).permit).sort()).toEqual([0, 1, 2]);

      await held[1].release();
      const again = await locks.tryAcquire(k, { limit: 3 });
      expect(again?.permit).toBe(held[1].permit);
      // Tokens increase per key and permit.
      expect(again!.fencingToken).toBeGreaterThan(held[1].fencingToken);
      for (const l of [...held, again!]) await l.release();
      expect(events.filter((e) => e.type === 'released')).toHaveLength(4);
      expect(await locks.isLocked(k)).toBe(false);
    });

    it('never lets more than limit holders in from two replicas, and reaches the limit', async () => {
      const [a, b] = await twoReplicas();
      const k = key('occupancy');
      const callers = [a.locks, a.locks, a.locks, b.locks, b.locks, b.locks];
      const seen = await occupancy(callers, k, 3, 4, 60);
      expect(seen.runs).toBe(24);
      expect(seen.most).toBe(3);
      expect([...seen.permits].sort()).toEqual([0, 1, 2]);
    });

    it('shares permit 0 with the mutex of the same key', async () => {
      const { locks } = await boot();
      const k = key('mutex');
      const mutex = await locks.acquire(k, { ttl: 10_000 });
      const limited = await locks.acquire(k, { limit: 2, ttl: 10_000 });
      expect(limited.permit).toBe(1);
      await expect(locks.tryAcquire(k, { limit: 2 })).resolves.toBeNull();
      await mutex.release();
      const zero = await locks.acquire(k, { limit: 2, ttl: 10_000 });
      expect(zero.permit).toBe(0);
      // A limited holder of permit 0 keeps the mutex out; the mutex sees nothing of permit 1.
      await expect(locks.tryAcquire(k)).resolves.toBeNull();
      await zero.release();
      const plain = await locks.tryAcquire(k);
      expect(plain).not.toBeNull();
      await plain?.release();
      await limited.release();
    });

    it('wakes a waiter when a permit is released, not at the backoff delay', async () => {
      // Retries 4 s apart: a waiter that only polled would wait 4 s for the freed permit.
      const retry = { count: 3, delay: 4_000, maxDelay: 4_000, jitter: 0 };
      const [holder, waiter] = await twoReplicas({ retry });
      const k = key('wake');
      const held = [
        await holder.locks.acquire(k, { limit: 2, ttl: 20_000 }),
        await holder.locks.acquire(k, { limit: 2, ttl: 20_000 }),
      ];
      const waiting = waiter.locks.acquire(k, { limit: 2, ttl: 5_000 });
      await delay(200);
      const freed = performance.now();
      await held[1].release();
      const lock = await waiting;
      const took = performance.now() - freed;
      expect(lock.permit).toBe(held[1].permit);
      expect(took).toBeLessThan(2_000);
      await lock.release();
      await held[0].release();
    });

    it('extends, expires and releases each permit on its own', async () => {
      const { locks, events } = await boot();
      const k = key('per-permit');
      const ttl = short(400);
      const kept = await locks.acquire(k, { limit: 2, ttl });
      const lapsing = await locks.acquire(k, { limit: 2, ttl });
      expect(new Set([kept.permit, lapsing.permit]).size).toBe(2);
      const extender = setInterval(() => void kept.extend(ttl * 4).catch(() => undefined), ttl / 4);
      try {
        const reason = await aborted(lapsing.signal, bound(2_000, 400));
        expect(reason).toBeInstanceOf(LockLostError);
        expect(kept.signal.aborted).toBe(false);
        await expect(lapsing.extend()).rejects.toBeInstanceOf(LockLostError);
        // The lapsed permit is free again; the extended one is still held.
        const next = await eventually(
          async () => {
            const l = await locks.tryAcquire(k, { limit: 2, ttl: 10_000 });
            if (!l) return false;
            expect(l.permit).toBe(lapsing.permit);
            await l.release();
            return true;
          },
          bound(2_000, 400),
        );
        expect(next).toBe(true);
      } finally {
        clearInterval(extender);
      }
      await kept.extend(10_000);
      const other = await locks.acquire(k, { limit: 2, ttl: 10_000 });
      await expect(locks.tryAcquire(k, { limit: 2 })).resolves.toBeNull();
      await kept.release();
      await expect(kept.extend()).rejects.toBeInstanceOf(LockLostError);
      expect(await locks.tryAcquire(k, { limit: 2 })).toMatchObject({ permit: kept.permit });
      await other.release();
      expect(events.filter((e) => e.type === 'lost')).toMatchObject([
        { keys: [k], reason: 'expired', permit: lapsing.permit },
      ]);
    });

    it('aborts the signal of a permit whose key is dropped, and keeps the others', async () => {
      const { locks } = await boot();
      const k = key('dropped');
      const a = await locks.acquire(k, { limit: 2, ttl: 10_000 });
      const b = await locks.acquire(k, { limit: 2, ttl: 10_000 });
      await harness.dropKey(permitKey(k, b.permit));
      await expect(b.extend()).rejects.toBeInstanceOf(LockLostError);
      expect(b.signal.aborted).toBe(true);
      expect(b.signal.reason).toBeInstanceOf(LockLostError);
      await expect(a.extend()).resolves.toBeUndefined();
      expect(a.signal.aborted).toBe(false);
      await a.release();
    });

    it('keeps a permit for lockAtLeastFor after a short run', async () => {
      const { locks } = await boot();
      const k = key('at-least');
      const keep = short(800);
      const started = performance.now();
      const permit = await locks.runExclusive(k, (lock) => lock.permit, {
        limit: 2,
        lockAtLeastFor: keep,
        ttl: Math.max(keep * 2, 2_000),
      });
      const other = await locks.acquire(k, { limit: 2, ttl: 10_000 });
      expect(other.permit).not.toBe(permit);
      const third = await locks.tryAcquire(k, { limit: 2 });
      if (performance.now() - started < keep - 50) expect(third).toBeNull();
      await third?.release();
      const freed = await eventually(
        async () => {
          const l = await locks.tryAcquire(k, { limit: 2 });
          await l?.release();
          return l?.permit === permit;
        },
        bound(3_000, 800),
      );
      expect(freed).toBe(true);
      expect(performance.now() - started).toBeGreaterThanOrEqual(keep - 20);
      await other.release();
    });

    it('rejects a bad limit with InvalidLockArgumentError before any store call', async () => {
      const { locks } = await boot();
      const k = key('bad');
      // With the store down, a store call would fail with LockUnavailableError instead.
      await harness.makeUnavailable();
      for (const limit of [0, -1, 1.5, 101, Number.NaN, '2', null]) {
        const bad = { limit } as unknown as { limit: number };
        await expect(locks.acquire(k, bad)).rejects.toMatchObject({
          name: 'InvalidLockArgumentError',
          field: 'limit',
        });
        await expect(locks.tryAcquire(k, bad)).rejects.toBeInstanceOf(InvalidLockArgumentError);
        await expect(locks.runExclusive(k, () => 1, bad)).rejects.toMatchObject({ field: 'limit' });
      }
      await expect(locks.acquire([k, `${k}:b`], { limit: 2 })).rejects.toMatchObject({
        name: 'InvalidLockArgumentError',
        field: 'limit',
      });
      await harness.restore();
    });

    it('limits an @Exclusive route: at most limit runs at once, 409 beyond', async () => {
      route.inside = route.most = route.ran = 0;
      const http = await bootHttp([LimitedExportsController]);
      const id = key('route');
      const answers = await Promise.all(
        Array.from({ length: 5 }, () => request(http).post(`/exports/${id}`)),
      );
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses.filter((s) => s === 201)).toHaveLength(route.ran);
      expect(route.most).toBe(2);
      expect(route.ran).toBeGreaterThanOrEqual(2);
      expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
      expect(statuses.filter((s) => s === 409).length).toBeGreaterThan(0);
    });

    it('fails bootstrap for a limit on a scheduled handler', async () => {
      const moduleRef = await harness.compile({ providers: [LimitedInterval] }, {});
      try {
        const init = moduleRef.init();
        await expect(init).rejects.toBeInstanceOf(DistributedLockConfigError);
        await expect(init).rejects.toMatchObject({
          field: 'LimitedInterval.tick @Exclusive limit',
        });
      } finally {
        await moduleRef.close().catch(() => undefined);
      }
    });
  });
}
