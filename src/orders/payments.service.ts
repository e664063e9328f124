import { Injectable } from '@nestjs/common';
import { LockService } from '@app/distributed-lock';
import { AuditService } from '../audit/audit.service';

/** Charges orders; a provider that uses LockService directly. */
@Injectable()
export class PaymentsService {
  constructor(
    private readonly locks: LockService,
    private readonly audit: AuditService,
  ) {}

  /** Called by the route, which already holds the order's lock. */
  async charge(orderId: string): Promise<{ orderId: string; fencingNote: string }> {
    const lock = this.locks.current();
    await new Promise((r) => setTimeout(r, 200)); // the payment provider's round trip
    if (lock?.signal.aborted) throw lock.signal.reason;
    await this.audit.recordPayment(orderId);
    return { orderId, fencingNote: `charged while holding ${lock?.keys.join(',') ?? 'no lock'}` };
  }

  /** A nightly reconciliation any replica may start; runExclusive makes it one at a time. */
  reconcile(): Promise<number> {
    return this.locks.runExclusive('payments:reconcile', async (lock) => {
      await new Promise((r) => setTimeout(r, 50));
      return lock.expiresAt;
    });
  }
}
