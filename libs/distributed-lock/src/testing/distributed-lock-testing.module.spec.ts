import { Injectable } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { Exclusive } from '../exclusive/exclusive.decorator';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockLostError } from '../errors/lock-lost.error';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import type { LockEvent } from '../events/lock-event.interface';
import type { Lock } from '../interfaces/lock.interface';
import { LockService } from '../lock.service';
import { DistributedLockTestingModule, LockTestingController } from './index';

/** Resolves after `ms` of (fake) time. */
const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

@Injectable()
class Reports {
  runs = 0;
  @Exclusive({ key: 'report', ttl: 1_000 })
  async build(ms: number): Promise<string> {
    this.runs += 1;
    await pause(ms);
    return 'built';
  }
}

/** Everything below runs under jest's modern fake timers: no test waits for real time. */
describe('DistributedLockTestingModule under jest.useFakeTimers()', () => {
  let moduleRef: TestingModule;
  let locks: LockService;
  let control: LockTestingController;
  let events: LockEvent[];

  beforeEach(async () => {
    jest.useFakeTimers();
    moduleRef = await Test.createTestingModule({
      imports: [DistributedLockTestingModule.forRoot({ ttl: 1_000 })],
      providers: [Reports],
    }).compile();
    await moduleRef.init();
    locks = moduleRef.get(LockService);
    control = moduleRef.get(LockTestingController);
    events = [];
    locks.events.subscribe((e) => events.push(e));
  });

  afterEach(async () => {
    await moduleRef.close();
    jest.useRealTimers();
  });

  it('expires a lock after its TTL of fake time: signal aborts, extend throws, the key is free', async () => {
    const lock = await locks.acquire('job', { ttl: 1_000 });
    const { signal } = lock;
    await jest.advanceTimersByTimeAsync(999);
    expect(signal.aborted).toBe(false);
    expect(await locks.isLocked('job')).toBe(true);
    await expect(locks.tryAcquire('job')).resolves.toBeNull();

    await jest.advanceTimersByTimeAsync(1);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBeInstanceOf(LockLostError);
    expect(await locks.isLocked('job')).toBe(false);
    await expect(lock.extend()).rejects.toBeInstanceOf(LockLostError);
    expect(events.filter((e) => e.type === 'lost')).toMatchObject([{ reason: 'expired' }]);

    const next = await locks.acquire('job');
    expect(next.fencingToken).toBeGreaterThan(lock.fencingToken);
    // The stale holder cannot free the new holder's lock.
    await expect(lock.release()).rejects.toBeInstanceOf(LockLostError);
    expect(await locks.isLocked('job')).toBe(true);
  });

  it('auto-extends a runExclusive lock across 5 × TTL of fake time, then releases it', async () => {
    let seen: Lock | undefined;
    const running = locks.runExclusive(
      'job',
      async (lock) => {
        seen = lock;
        await pause(5_500);
        return lock.signal.aborted;
      },
      { ttl: 1_000 },
    );
    for (let t = 0; t < 5; t += 1) {
      await jest.advanceTimersByTimeAsync(1_000);
      expect(await locks.isLocked('job')).toBe(true);
      expect(seen?.signal.aborted).toBe(false);
    }
    await jest.advanceTimersByTimeAsync(500);
    await expect(running).resolves.toBe(false);
    expect(events.filter((e) => e.type === 'extended').length).toBeGreaterThanOrEqual(9);
    expect(await locks.isLocked('job')).toBe(false);
    expect(events.at(-1)).toMatchObject({ type: 'released', keys: ['job'] });
  });

  it('stops extending at lockAtMostFor and lets the lock expire (monotonic clock is faked too)', async () => {
    let seen: Lock | undefined;
    const running = locks.runExclusive(
      'job',
      async (lock) => {
        seen = lock;
        await pause(5_000);
      },
      { ttl: 1_000, lockAtMostFor: 2_500 },
    );
    await jest.advanceTimersByTimeAsync(2_400);
    expect(seen?.signal.aborted).toBe(false);
    await jest.advanceTimersByTimeAsync(200);
    expect(seen?.signal.aborted).toBe(true);
    expect(await locks.isLocked('job')).toBe(false);
    await jest.advanceTimersByTimeAsync(2_400);
    await running;
  });

  it('holds the lock for lockAtLeastFor of fake time after short work', async () => {
    await locks.runExclusive('job', () => 'quick', { lockAtLeastFor: 3_000 });
    await jest.advanceTimersByTimeAsync(2_990);
    expect(await locks.isLocked('job')).toBe(true);
    await jest.advanceTimersByTimeAsync(20);
    expect(await locks.isLocked('job')).toBe(false);
  });

  it('waits for a lock held elsewhere until its TTL passes, with a higher fencing token', async () => {
    const elsewhere = control.holdElsewhere('job', 2_000);
    let got: Lock | undefined;
    void locks.acquire('job', { wait: 5_000 }).then((lock) => (got = lock));
    await jest.advanceTimersByTimeAsync(1_900);
    expect(got).toBeUndefined();
    // Past the TTL: woken by the store at once, or by the next backoff retry (at most 1.25 s later).
    await jest.advanceTimersByTimeAsync(1_500);
    expect(got?.fencingToken).toBeGreaterThan(elsewhere);
  });

  it('gives up waiting after `wait` ms of fake time with LockBusyError', async () => {
    control.holdElsewhere('job');
    const waiting = locks.acquire('job', { wait: 3_000 });
    const settled = expect(waiting).rejects.toBeInstanceOf(LockBusyError);
    await jest.advanceTimersByTimeAsync(3_100);
    await settled;
  });

  it('expire() ends a running @Exclusive lease: signal aborts at once, the next caller runs', async () => {
    const reports = moduleRef.get(Reports);
    const first = reports.build(10_000);
    await jest.advanceTimersByTimeAsync(10);
    expect(events.find((e) => e.type === 'acquired')).toMatchObject({ handler: 'Reports.build' });
    await expect(reports.build(0)).rejects.toBeInstanceOf(LockBusyError);

    expect(control.expire('report')).toBe(true);
    expect(events.filter((e) => e.type === 'lost')).toMatchObject([
      { reason: 'expired', handler: 'Reports.build' },
    ]);
    const second = reports.build(100);
    await jest.advanceTimersByTimeAsync(100);
    await expect(second).resolves.toBe('built');
    await jest.advanceTimersByTimeAsync(10_000);
    await expect(first).resolves.toBe('built');
    expect(reports.runs).toBe(2);
  });

  it('setUnavailable() fails every call with LockUnavailableError and lets a running lock expire', async () => {
    const lock = await locks.acquire('job', { ttl: 1_000 });
    const { signal } = lock;
    control.setUnavailable(true);
    await expect(locks.tryAcquire('other')).rejects.toBeInstanceOf(LockUnavailableError);
    await expect(locks.isLocked('job')).rejects.toBeInstanceOf(LockUnavailableError);
    await expect(lock.extend()).rejects.toBeInstanceOf(LockUnavailableError);
    await jest.advanceTimersByTimeAsync(1_000);
    expect(signal.aborted).toBe(true);

    control.setUnavailable(false);
    expect(await locks.isLocked('job')).toBe(false);
    control.holdElsewhere('job');
    control.setUnavailable(true);
    control.reset();
    await expect(locks.tryAcquire('job')).resolves.not.toBeNull();
  });
});
