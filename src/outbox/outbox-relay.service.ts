import { Injectable, Logger } from '@nestjs/common';
import { Leader, type Leadership } from '@app/distributed-lock';
import { AuditService } from '../audit/audit.service';

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

/**
 * A long-running, one-replica-only worker: relays the outbox while this replica leads the
 * `outbox-relay` election. Every batch is written with the leadership's term (a fencing token), so
 * a leader that lost its leadership while paused can never relay after its successor. When the
 * replica shuts down, `signal` aborts, the loop ends, and a waiting replica takes over at once.
 */
@Injectable()
export class OutboxRelayService {
  private readonly logger = new Logger(OutboxRelayService.name);

  constructor(private readonly audit: AuditService) {}

  /** Runs on exactly one replica at a time, from the moment it is elected until it steps down. */
  @Leader({ name: 'outbox-relay', ttl: 5_000 })
  async relay(leadership: Leadership): Promise<void> {
    this.logger.log(`leading outbox-relay, term ${leadership.term}`);
    while (!leadership.signal.aborted) {
      if (!(await this.audit.relayBatch(leadership.term))) {
        // A newer term relayed already: this leadership is over, whatever the signal says yet.
        await leadership.resign();
        return;
      }
      await sleep(2_000, leadership.signal);
    }
    this.logger.log(`stopped leading outbox-relay (${String(leadership.signal.reason)})`);
  }
}
