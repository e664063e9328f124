/**
 * Preloaded (`node -r`) into a child process to make it behave as if `@opentelemetry/api` were not
 * installed: every resolution of an `@opentelemetry/*` request fails the way Node fails for a
 * missing package (code MODULE_NOT_FOUND), whoever asks (require, createRequire, require.resolve).
 */
import * as NodeModule from 'node:module';

type Resolve = (this: unknown, request: string, ...rest: unknown[]) => string;
const loader = NodeModule.Module as unknown as { _resolveFilename: Resolve };
const original = loader._resolveFilename;
loader._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
  if (request.startsWith('@opentelemetry/')) {
    const error: NodeJS.ErrnoException = new Error(`Cannot find module '${request}'`);
    error.code = 'MODULE_NOT_FOUND';
    throw error;
  }
  return original.call(this, request, ...rest);
};
