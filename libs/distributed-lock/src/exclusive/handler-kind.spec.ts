import 'reflect-metadata';
import { Controller, Get, Post } from '@nestjs/common';
import { MessagePattern } from '@nestjs/microservices';
import { Cron, Interval, Timeout } from '@nestjs/schedule';
import { cronMetadata, handlerKind, isScheduled } from './handler-kind';

class Jobs {
  @Cron('*/5 * * * * *', { timeZone: 'Europe/Berlin' })
  cron() {}
  @Interval(1_000)
  interval() {}
  @Timeout(1_000)
  timeout() {}
  @MessagePattern('sum')
  rpc() {}
  plain() {}
}

@Controller('orders')
class Orders {
  @Post(':id/pay')
  pay() {}
  @Get()
  list() {}
}

describe('handlerKind', () => {
  it.each([
    [Jobs.prototype.cron, 'cron'],
    [Jobs.prototype.interval, 'interval'],
    [Jobs.prototype.timeout, 'timeout'],
    [Jobs.prototype.rpc, 'rpc'],
    [Jobs.prototype.plain, 'method'],
    [Orders.prototype.pay, 'http'],
    [Orders.prototype.list, 'http'],
  ])('reads the kind from the other decorators (%#)', (fn, kind) => {
    expect(handlerKind(fn)).toBe(kind);
  });

  it('tells scheduled kinds apart', () => {
    expect(['cron', 'interval', 'timeout'].every((k) => isScheduled(k as 'cron'))).toBe(true);
    expect(['http', 'rpc', 'method'].some((k) => isScheduled(k as 'http'))).toBe(false);
  });

  it('reads the @Cron options', () => {
    expect(cronMetadata(Jobs.prototype.cron)).toMatchObject({
      cronTime: '*/5 * * * * *',
      timeZone: 'Europe/Berlin',
    });
    expect(cronMetadata(Jobs.prototype.plain)).toEqual({});
  });
});
