import { Controller, Injectable, Param, Post } from '@nestjs/common';
import { Interval, ScheduleModule } from '@nestjs/schedule';
import request from 'supertest';
import {
  Exclusive,
  LockBusyError,
  LockUnavailableError,
  type LockEvent,
} from '@app/distributed-lock';
import { delay, eventually, type ContractContext } from './contract-context';

/** Per-test state the decorated classes below read (their keys must be unique per test). */
const state = {
  jobKey: 'contract:job',
  runs: new Map<string, number>(),
};
const bump = (name: string) => state.runs.set(name, (state.runs.get(name) ?? 0) + 1);
const runs = (name: string) => state.runs.get(name) ?? 0;

@Controller('orders')
class ContractOrdersController {
  @Post(':id/pay')
  @Exclusive({ key: (id: string) => `order:${id}` })
  async pay(@Param('id') id: string): Promise<{ paid: string }> {
    bump(`pay:${id}`);
    await delay(1_000);
    return { paid: id };
  }
}

@Injectable()
class ContractJobs {
  /** Scheduled-style: called directly here (no ScheduleModule), it is still a scheduled handler. */
  @Interval('contract-direct', 3_600_000)
  @Exclusive({ key: () => state.jobKey })
  tick(): void {
    bump(state.jobKey);
  }

  /** A plain provider method: throws when busy. */
  @Exclusive({ key: (id: string) => `plain:${id}` })
  async work(id: string): Promise<string> {
    bump(`plain:${id}`);
    await delay(10);
    return `worked ${id}`;
  }
}

@Injectable()
class ContractSchedule {
  @Interval('contract-every-200ms', 200)
  @Exclusive({ key: () => state.jobKey })
  every200ms(): void {
    bump('scheduled');
  }
}

/** The `@Exclusive()` half of the contract: routes, scheduled handlers, plain methods. */
export function exclusiveContract(ctx: ContractContext): void {
  const { boot, bootHttp, bound, harness, holdElsewhere, key, newId, short } = ctx;

  describe('@Exclusive()', () => {
    afterEach(() => state.runs.clear());

    it('answers 409 on a route when busy, and one 2xx for concurrent duplicates', async () => {
      const http = await bootHttp([ContractOrdersController]);
      const held = newId('busy');
      await holdElsewhere(`order:${held}`);
      const busy = await request(http).post(`/orders/${held}/pay`);
      expect(busy.status).toBe(409);
      expect(busy.body).toMatchObject({ code: 'LOCK_BUSY', key: `order:${held}` });
      expect(runs(`pay:${held}`)).toBe(0);

      const id = newId('dup');
      const first = request(http)
        .post(`/orders/${id}/pay`)
        .then((r) => r);
      // The duplicate goes out once the first one holds the lock and runs (it runs for 1 s).
      expect(await eventually(() => runs(`pay:${id}`) === 1, 5_000)).toBe(true);
      const second = await request(http).post(`/orders/${id}/pay`);
      expect([(await first).status, second.status]).toEqual([201, 409]);
      expect(runs(`pay:${id}`)).toBe(1);
    });

    it('answers 503 on a route when the store is unavailable, never running the handler', async () => {
      const http = await bootHttp([ContractOrdersController]);
      const id = newId('down');
      await harness.makeUnavailable();
      const down = await request(http).post(`/orders/${id}/pay`);
      expect(down.status).toBe(503);
      expect(down.body).toMatchObject({ code: 'LOCK_UNAVAILABLE', key: `order:${id}` });
      expect(runs(`pay:${id}`)).toBe(0);
      await harness.restore();
      expect((await request(http).post(`/orders/${id}/pay`)).status).toBe(201);
    });

    it('skips a scheduled handler when busy or unavailable, and runs it when free', async () => {
      const { moduleRef, events, locks } = await boot({ providers: [ContractJobs] });
      const jobs = moduleRef.get(ContractJobs);
      state.jobKey = key('job');
      await holdElsewhere(state.jobKey, short(1_000));
      await expect(Promise.resolve(jobs.tick())).resolves.toBeUndefined();
      await harness.makeUnavailable();
      await expect(Promise.resolve(jobs.tick())).resolves.toBeUndefined();
      await harness.restore();
      expect(runs(state.jobKey)).toBe(0);
      expect(events.filter((e) => e.type === 'skipped')).toMatchObject([
        { reason: 'busy', handler: 'ContractJobs.tick', keys: [state.jobKey] },
        { reason: 'unavailable', handler: 'ContractJobs.tick' },
      ]);
      // Free once the holder's TTL has passed (a store may drop an expired key a little late).
      expect(
        await eventually(async () => !(await locks.isLocked(state.jobKey)), bound(2_000, 1_000)),
      ).toBe(true);
      await Promise.resolve(jobs.tick());
      expect(runs(state.jobKey)).toBe(1);
    });

    it('skips a real @Interval job while its lock is held, and runs it once it is free', async () => {
      state.jobKey = key('interval');
      const { locks, events } = await boot({
        imports: [ScheduleModule.forRoot()],
        providers: [ContractSchedule],
      });
      // Taken right after init; on a slow machine a firing may have run before it was granted,
      // so what counts is that none runs while it is held.
      const held = await locks.acquire(state.jobKey);
      const before = runs('scheduled');
      await delay(700);
      expect(runs('scheduled')).toBe(before);
      const skipped = events.filter((e) => e.type === 'skipped');
      expect(skipped.length).toBeGreaterThanOrEqual(1);
      for (const e of skipped) {
        expect(e).toMatchObject({ reason: 'busy', handler: 'ContractSchedule.every200ms' });
      }
      await held.release();
      expect(await eventually(() => runs('scheduled') > before, 2_000)).toBe(true);
    });

    it('throws LockBusyError from a plain method when busy and LockUnavailableError when down', async () => {
      const { moduleRef } = await boot({ providers: [ContractJobs] });
      const jobs = moduleRef.get(ContractJobs);
      const id = newId('plain');
      await holdElsewhere(`plain:${id}`);
      await expect(jobs.work(id)).rejects.toBeInstanceOf(LockBusyError);
      await harness.makeUnavailable();
      await expect(jobs.work(`${id}-free`)).rejects.toBeInstanceOf(LockUnavailableError);
      await harness.restore();
      await expect(jobs.work(`${id}-free`)).resolves.toBe(`worked ${id}-free`);
      expect(runs(`plain:${id}`)).toBe(0);
      expect(runs(`plain:${id}-free`)).toBe(1);
    });

    it('emits acquired and released for an @Exclusive method, naming the handler', async () => {
      const { moduleRef, events } = await boot({ providers: [ContractJobs] });
      const id = newId('plain');
      await moduleRef.get(ContractJobs).work(id);
      expect(events).toMatchObject([
        { type: 'acquired', keys: [`plain:${id}`], handler: 'ContractJobs.work' },
        { type: 'released', keys: [`plain:${id}`], handler: 'ContractJobs.work' },
      ]);
      const [acquired, released] = events as [
        LockEvent & { fencingToken: number },
        LockEvent & { fencingToken: number },
      ];
      expect(released.fencingToken).toBe(acquired.fencingToken);
    });
  });
}
