import type * as Api from '@opentelemetry/api';
import { createRequire } from 'node:module';

/** The `@opentelemetry/api` module (an optional peer). @internal */
export type OpenTelemetryApi = typeof Api;

/**
 * Loads `@opentelemetry/api` from where the library is installed, so the user's copy (the one their
 * SDK registers its global providers with) is the one we read. `null` when it is not installed, or
 * too old to have the metrics API (before 1.3; the peer range asks for 1.4). Other load failures
 * (a broken install) are thrown for the caller to report.
 * @internal
 */
export function loadOpenTelemetry(): OpenTelemetryApi | null {
  let api: Partial<OpenTelemetryApi>;
  try {
    api = createRequire(__filename)('@opentelemetry/api') as Partial<OpenTelemetryApi>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return null;
    throw error;
  }
  const complete =
    typeof api.metrics?.getMeterProvider === 'function' &&
    typeof api.trace?.getTracerProvider === 'function' &&
    typeof api.context?.active === 'function';
  return complete ? (api as OpenTelemetryApi) : null;
}

/**
 * The library's version for the instrumentation scope, read from the published package.json next to
 * the build (absent when running from source, where the scope simply has no version).
 * @internal
 */
export function libraryVersion(): string | undefined {
  try {
    const pkg = createRequire(__filename)('../package.json') as {
      name?: unknown;
      version?: unknown;
    };
    return pkg.name === 'nestjs-distributed-lock' && typeof pkg.version === 'string'
      ? pkg.version
      : undefined;
  } catch {
    // Running from source: there is no package.json of the library beside it.
    return undefined;
  }
}
