import {
  Controller,
  Injectable,
  Param,
  Post,
  Scope,
  type INestApplication,
  type INestMicroservice,
} from '@nestjs/common';
import {
  MessagePattern,
  Transport,
  ClientProxyFactory,
  type ClientProxy,
} from '@nestjs/microservices';
import { Cron, Interval, ScheduleModule, SchedulerRegistry, Timeout } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { firstValueFrom } from 'rxjs';
import {
  DistributedLockConfigError,
  DistributedLockModule,
  Exclusive,
  LockBusyError,
  LockService,
  type DistributedLockModuleOptions,
  type Lock,
} from '@app/distributed-lock';
import { freePort, RedisFleet } from './support/redis-fleet';
import { CapturingLogger, delay, eventually } from './support/lock-app';

const counts = new Map<string, number>();
const bump = (name: string) => counts.set(name, (counts.get(name) ?? 0) + 1);

@Injectable()
class ScheduledJobs {
  @Exclusive()
  @Cron('* * * * * *')
  exclusiveAboveCron() {
    bump('aboveCron');
  }

  @Cron('* * * * * *')
  @Exclusive()
  exclusiveBelowCron() {
    bump('belowCron');
  }

  @Exclusive()
  @Interval(100)
  exclusiveAboveInterval() {
    bump('aboveInterval');
  }

  @Interval(100)
  @Exclusive()
  exclusiveBelowInterval() {
    bump('belowInterval');
  }
}

@Injectable()
class StartupJob {
  @Timeout(50)
  @Exclusive({ lockAtLeastFor: 5_000 })
  async once() {
    bump('timeout');
    await delay(10);
  }
}

let inside = 0;
let maxInside = 0;
@Controller('orders')
class OrdersController {
  @Post(':id/pay')
  @Exclusive({ key: (id: string) => `order:${id}` })
  async pay(@Param('id') id: string) {
    inside += 1;
    maxInside = Math.max(maxInside, inside);
    bump(`pay:${id}`);
    await delay(300);
    inside -= 1;
    return { paid: id };
  }
}

@Controller()
class RpcController {
  @MessagePattern({ cmd: 'pay' })
  @Exclusive({ key: (data: { id: string }) => `rpc-order:${data.id}` })
  async pay(data: { id: string }) {
    await delay(300);
    return { paid: data.id };
  }
}

@Injectable()
class Worker {
  constructor(readonly locks: LockService) {}
  seen: Array<Lock | undefined> = [];

  @Exclusive({ key: 'worker', sharedKey: true })
  async work(ms: number) {
    this.seen.push(this.locks.current());
    await this.nested();
    await delay(ms);
    return 'done';
  }

  private async nested() {
    await delay(1);
    this.seen.push(this.locks.current());
  }

  @Exclusive({ key: 'worker', onBusy: 'skip', sharedKey: true })
  skipIfBusy() {
    return 'ran';
  }

  @Exclusive({ key: 'worker', onBusy: 'wait', wait: 10_000, sharedKey: true })
  waitIfBusy() {
    return 'waited';
  }
}

@Injectable({ scope: Scope.REQUEST })
class RequestScoped {
  @Exclusive({ key: 'shared-by-accident' })
  a() {}
}

@Injectable()
class AccidentalShare {
  @Exclusive({ key: 'shared-by-accident' })
  b() {}
}

describe('@Exclusive()', () => {
  let fleet: RedisFleet;
  const closers: Array<() => Promise<unknown>> = [];
  const opts = (
    extra: Partial<DistributedLockModuleOptions> = {},
  ): DistributedLockModuleOptions => ({
    connections: fleet.urls,
    logger: false,
    ...extra,
  });

  beforeAll(async () => {
    fleet = await RedisFleet.start(3);
  });
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c()));
    await fleet.heal();
    counts.clear();
  });
  afterAll(async () => {
    await fleet.stop();
  });

  it('keeps @Cron and @Interval jobs whether written above or below them', async () => {
    const app = await Test.createTestingModule({
      imports: [ScheduleModule.forRoot(), DistributedLockModule.forRoot(opts())],
      providers: [ScheduledJobs],
    }).compile();
    await app.init();
    closers.push(() => app.close());
    const registry = app.get(SchedulerRegistry);
    expect(registry.getCronJobs().size).toBe(2);
    expect(registry.getIntervals()).toHaveLength(2);
    await delay(2_300);
    expect(counts.get('aboveCron')).toBeGreaterThanOrEqual(1);
    expect(counts.get('belowCron')).toBeGreaterThanOrEqual(1);
    expect(counts.get('aboveInterval')).toBeGreaterThanOrEqual(5);
    expect(counts.get('belowInterval')).toBeGreaterThanOrEqual(5);
  });

  it('runs a @Timeout handler once across three replicas', async () => {
    for (let i = 0; i < 3; i += 1) {
      const app = await Test.createTestingModule({
        imports: [ScheduleModule.forRoot(), DistributedLockModule.forRoot(opts())],
        providers: [StartupJob],
      }).compile();
      await app.init();
      closers.push(() => app.close());
      await delay(40);
    }
    await delay(500);
    expect(counts.get('timeout')).toBe(1);
  });

  describe('on HTTP routes', () => {
    let urls: string[];
    beforeEach(async () => {
      urls = [];
      for (let i = 0; i < 2; i += 1) {
        const mod = await Test.createTestingModule({
          imports: [DistributedLockModule.forRoot(opts())],
          controllers: [OrdersController],
        }).compile();
        const app: INestApplication = mod.createNestApplication({ logger: false });
        await app.listen(0, '127.0.0.1');
        closers.push(() => app.close());
        urls.push(await app.getUrl());
      }
    });
    const pay = (i: number, id: string) =>
      fetch(`${urls[i % urls.length]}/orders/${id}/pay`, { method: 'POST' }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as Record<string, unknown>,
      }));

    it('answers one 2xx and 409 for every concurrent duplicate across two replicas', async () => {
      inside = 0;
      maxInside = 0;
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => pay(i, '1')));
      const ok = results.filter((r) => r.status === 201);
      const conflicts = results.filter((r) => r.status === 409);
      expect(ok).toHaveLength(1);
      expect(conflicts).toHaveLength(19);
      expect(conflicts[0].body).toMatchObject({
        statusCode: 409,
        code: 'LOCK_BUSY',
        key: 'order:1',
      });
      expect(counts.get('pay:1')).toBe(1);
      expect(maxInside).toBe(1);
    });

    it('lets distinct orders through', async () => {
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => pay(i, `distinct-${i}`)),
      );
      expect(results.map((r) => r.status)).toEqual(Array(10).fill(201));
    });

    it('answers 503 and never runs the handler when Redis has no majority', async () => {
      await Promise.all([fleet.nodes[0].kill(), fleet.nodes[1].kill()]);
      const results = await Promise.all([pay(0, 'down'), pay(1, 'down')]);
      expect(results.map((r) => r.status)).toEqual([503, 503]);
      expect(results[0].body).toMatchObject({ code: 'LOCK_UNAVAILABLE', key: 'order:down' });
      expect(counts.get('pay:down')).toBeUndefined();
    });
  });

  it('locks microservice message handlers per message key over TCP', async () => {
    const port = await freePort();
    const mod = await Test.createTestingModule({
      imports: [DistributedLockModule.forRoot(opts())],
      controllers: [RpcController],
    }).compile();
    const server: INestMicroservice = mod.createNestMicroservice({
      transport: Transport.TCP,
      options: { host: '127.0.0.1', port },
      logger: false,
    });
    await server.listen();
    closers.push(() => server.close());
    const client: ClientProxy = ClientProxyFactory.create({
      transport: Transport.TCP,
      options: { host: '127.0.0.1', port },
    });
    closers.push(() => Promise.resolve(client.close() as unknown));
    const send = (id: string) =>
      firstValueFrom(client.send<{ paid: string }>({ cmd: 'pay' }, { id })).then(
        (v) => ({ ok: v }),
        (e: unknown) => ({ error: e as Record<string, unknown> }),
      );
    const [a, b, c] = await Promise.all([send('7'), send('7'), send('8')]);
    const outcomes = [a, b];
    expect(outcomes.filter((o) => 'ok' in o)).toHaveLength(1);
    const failed = outcomes.find((o) => 'error' in o) as { error: Record<string, unknown> };
    expect(failed.error).toMatchObject({ code: 'LOCK_BUSY', key: 'rpc-order:7' });
    expect(c).toEqual({ ok: { paid: '8' } });
  });

  describe('on provider methods', () => {
    let worker: Worker;
    beforeEach(async () => {
      const app = await Test.createTestingModule({
        imports: [DistributedLockModule.forRoot(opts())],
        providers: [Worker],
      }).compile();
      await app.init();
      closers.push(() => app.close());
      worker = app.get(Worker);
    });

    it('exposes the lock through current(), also in functions it awaits', async () => {
      expect(worker.locks.current()).toBeUndefined();
      await expect(worker.work(10)).resolves.toBe('done');
      expect(worker.seen).toHaveLength(2);
      expect(worker.seen[0]?.keys).toEqual(['worker']);
      expect(worker.seen[1]).toBe(worker.seen[0]);
      expect(worker.seen[0]?.signal.aborted).toBe(true); // released after the method
    });

    it("throws LockBusyError by default, skips with 'skip', waits with 'wait'", async () => {
      const seenBefore = worker.seen.length;
      const running = worker.work(2_000);
      // Held once the method body runs (it records current() first).
      expect(await eventually(() => worker.seen.length > seenBefore, 5_000)).toBe(true);
      await expect(worker.work(1)).rejects.toBeInstanceOf(LockBusyError);
      await expect(worker.skipIfBusy()).resolves.toBeUndefined();
      await expect(worker.waitIfBusy()).resolves.toBe('waited');
      await running;
    });
  });

  it('warns at bootstrap about request-scoped providers and accidentally shared keys', async () => {
    const logger = new CapturingLogger();
    const app = await Test.createTestingModule({
      imports: [DistributedLockModule.forRoot(opts({ logger }))],
      providers: [RequestScoped, AccidentalShare, Worker],
    }).compile();
    await app.init();
    await app.close();
    const warnings = logger.at('warn').join('\n');
    expect(warnings).toMatch(/RequestScoped\.a uses @Exclusive in a request-scoped provider/);
    expect(warnings).toMatch(
      /"shared-by-accident" is shared by RequestScoped\.a, AccidentalShare\.b/,
    );
    expect(warnings).not.toMatch(/"worker" is shared/);
  });

  it('fails bootstrap for options only the module can judge, naming the handler and the option', async () => {
    @Injectable()
    class ShortJobs {
      /** 150 ms cannot be auto-extended at the default threshold (half the TTL) + 100 ms. */
      @Cron('* * * * * *')
      @Exclusive({ ttl: 150 })
      async tick() {}
    }
    const admin = new Redis(fleet.urls[0]);
    const clients = async () =>
      String(await admin.client('LIST'))
        .trim()
        .split('\n').length;
    const before = await clients();
    const app = await Test.createTestingModule({
      imports: [ScheduleModule.forRoot(), DistributedLockModule.forRoot(opts())],
      providers: [ShortJobs],
    }).compile();
    const error = await app.init().then(
      () => undefined,
      (e: unknown) => e,
    );
    closers.push(() => app.close().catch(() => undefined));
    expect(error).toBeInstanceOf(DistributedLockConfigError);
    expect((error as DistributedLockConfigError).field).toBe('ShortJobs.tick @Exclusive ttl');
    expect(String(error)).toMatch(/too short to auto-extend/);
    // Nothing was connected: Nest runs no shutdown hook after a failed init, so an open connection
    // would keep the failed application's process alive instead of letting it exit.
    expect(await clients()).toBe(before);
    await admin.quit();
  });

  it('rejects invalid options when the decorator is applied, naming the handler and the option', () => {
    const apply = (options: object) => {
      class Jobs {
        run() {}
      }
      const descriptor = Object.getOwnPropertyDescriptor(Jobs.prototype, 'run')!;
      Exclusive(options)(Jobs.prototype, 'run', descriptor);
    };
    expect(() => apply({ onBusy: 'never' })).toThrow(DistributedLockConfigError);
    expect(() => apply({ onBusy: 'never' })).toThrow(
      "Jobs.run @Exclusive onBusy: must be one of 'skip', 'wait', 'throw'",
    );
    expect(() => apply({ ttl: -1 })).toThrow('Jobs.run @Exclusive ttl');
    expect(() => apply({ key: '' })).toThrow('Jobs.run @Exclusive key');
    expect(() => apply({ wait: 10 })).toThrow("only applies with onBusy: 'wait'");
    expect(() => apply({ lockAtLeastFor: 500, lockAtMostFor: 100 })).toThrow(
      'Jobs.run @Exclusive lockAtLeastFor: must not exceed lockAtMostFor (100), got 500',
    );
  });
});
