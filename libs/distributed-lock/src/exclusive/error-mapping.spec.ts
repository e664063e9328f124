import { ConflictException, ServiceUnavailableException } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import { mapLockError } from './error-mapping';

const busy = new LockBusyError(['order:1'], 'lock busy');
const down = new LockUnavailableError(['order:1'], 'lock unavailable');

describe('mapLockError', () => {
  it('answers 409 / 503 on HTTP with a body naming the key, keeping the cause', () => {
    const conflict = mapLockError(busy, 'http') as ConflictException;
    expect(conflict).toBeInstanceOf(ConflictException);
    expect(conflict.getResponse()).toMatchObject({
      statusCode: 409,
      code: 'LOCK_BUSY',
      key: 'order:1',
    });
    expect(conflict.cause).toBe(busy);
    const unavailable = mapLockError(down, 'http') as ServiceUnavailableException;
    expect(unavailable).toBeInstanceOf(ServiceUnavailableException);
    expect(unavailable.getResponse()).toMatchObject({ statusCode: 503, code: 'LOCK_UNAVAILABLE' });
  });

  it('answers an RpcException with the same fields on message handlers', () => {
    const rpc = mapLockError(busy, 'rpc') as RpcException;
    expect(rpc).toBeInstanceOf(RpcException);
    expect(rpc.getError()).toMatchObject({ status: 'error', statusCode: 409, key: 'order:1' });
  });

  it('leaves lock errors of plain methods and every other error alone', () => {
    expect(mapLockError(busy, 'method')).toBe(busy);
    expect(mapLockError(busy, 'cron')).toBe(busy);
    const other = new Error('boom');
    expect(mapLockError(other, 'http')).toBe(other);
  });
});
