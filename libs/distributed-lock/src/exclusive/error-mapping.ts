import { ConflictException, ServiceUnavailableException } from '@nestjs/common';
import { createRequire } from 'node:module';
import { LockBusyError } from '../errors/lock-busy.error';
import { LockUnavailableError } from '../errors/lock-unavailable.error';
import type { HandlerKind } from './handler-kind';

type RpcExceptionCtor = new (error: object) => Error;
let rpcException: RpcExceptionCtor | null | undefined;

function loadRpcException(): RpcExceptionCtor | null {
  if (rpcException === undefined) {
    try {
      const req = createRequire(__filename);
      rpcException = (req('@nestjs/microservices') as { RpcException: RpcExceptionCtor })
        .RpcException;
    } catch {
      rpcException = null;
    }
  }
  return rpcException;
}

/**
 * Turns lock errors into what the transport answers without user setup: HTTP 409 / 503 (with a JSON
 * body naming the lock key), or an `RpcException` with the same fields. Other errors pass through.
 * @internal
 */
export function mapLockError(error: unknown, kind: HandlerKind): unknown {
  const busy = error instanceof LockBusyError;
  if (!busy && !(error instanceof LockUnavailableError)) return error;
  const body = {
    statusCode: busy ? 409 : 503,
    error: busy ? 'Conflict' : 'Service Unavailable',
    code: busy ? 'LOCK_BUSY' : 'LOCK_UNAVAILABLE',
    message: error.message,
    key: error.keys.join(','),
  };
  if (kind === 'http') {
    return busy
      ? new ConflictException(body, { cause: error })
      : new ServiceUnavailableException(body, { cause: error });
  }
  if (kind === 'rpc') {
    const Rpc = loadRpcException();
    if (Rpc) return new Rpc({ status: 'error', ...body });
  }
  return error;
}
