import { ConflictException, ServiceUnavailableException, type HttpException } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { LockLostError } from '@app/distributed-lock';
import { DistributedLockTestingModule, LockTestingController } from '@app/distributed-lock/testing';
import { AuditService } from '../audit/audit.service';
import { OrdersController } from './orders.controller';
import { PaymentsService } from './payments.service';

/**
 * A unit test as a user of the library writes it: the real `@Exclusive()` and `LockService` over the
 * testing kit's in-memory store, no Redis. `LockTestingController` plays the other replicas and the
 * outages.
 */
describe('Paying an order (unit, no Redis)', () => {
  let moduleRef: TestingModule;
  let orders: OrdersController;
  let payments: PaymentsService;
  let locks: LockTestingController;
  const audit = { recordPayment: jest.fn<Promise<void>, [string]>() };

  beforeEach(async () => {
    audit.recordPayment.mockReset().mockResolvedValue(undefined);
    moduleRef = await Test.createTestingModule({
      imports: [DistributedLockTestingModule.forRoot()],
      controllers: [OrdersController],
      providers: [PaymentsService, { provide: AuditService, useValue: audit }],
    }).compile();
    await moduleRef.init();
    orders = moduleRef.get(OrdersController);
    payments = moduleRef.get(PaymentsService);
    locks = moduleRef.get(LockTestingController);
  });

  afterEach(() => moduleRef.close());

  const status = (error: unknown) => (error as HttpException).getStatus();

  it('charges once when the same payment arrives twice at the same time; the duplicate gets 409', async () => {
    const [first, second] = await Promise.allSettled([orders.pay('7'), orders.pay('7')]);
    expect(first).toMatchObject({ status: 'fulfilled', value: { orderId: '7' } });
    expect(second.status).toBe('rejected');
    const refused = (second as PromiseRejectedResult).reason as unknown;
    expect(refused).toBeInstanceOf(ConflictException);
    expect(status(refused)).toBe(409);
    expect(audit.recordPayment).toHaveBeenCalledTimes(1);
  });

  it('refuses to pay an order another replica is paying right now', async () => {
    locks.holdElsewhere('order:42');
    await expect(orders.pay('42')).rejects.toBeInstanceOf(ConflictException);
    expect(audit.recordPayment).not.toHaveBeenCalled();
    // Other orders are not affected.
    await expect(orders.pay('43')).resolves.toMatchObject({ orderId: '43' });
  });

  it('answers 503 and charges nothing while the lock store is down', async () => {
    locks.setUnavailable(true);
    const refused = await orders.pay('8').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ServiceUnavailableException);
    expect(status(refused)).toBe(503);
    expect(audit.recordPayment).not.toHaveBeenCalled();
  });

  it('does not record a payment whose lock expired during the provider round trip', async () => {
    const paying = orders.pay('9');
    await new Promise((r) => setTimeout(r, 50)); // inside the 200 ms call to the payment provider
    expect(locks.expire('order:9')).toBe(true);
    await expect(paying).rejects.toBeInstanceOf(LockLostError);
    expect(audit.recordPayment).not.toHaveBeenCalled();
  });

  it('waits for a reconciliation another replica is running, then runs its own', async () => {
    locks.holdElsewhere('payments:reconcile', 300);
    const started = performance.now();
    await expect(payments.reconcile()).resolves.toBeGreaterThan(Date.now());
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
  });
});
