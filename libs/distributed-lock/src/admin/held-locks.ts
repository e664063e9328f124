import { describeKey, leaderKey, permitKey } from '../backend/held-key';
import type { BackendHeldKey, LockBackend } from '../backend/lock-backend.interface';
import { Messages } from '../distributed-lock.messages';
import { LockOperationUnsupportedError } from '../errors/lock-operation-unsupported.error';
import { argumentError } from '../options/validators';
import { normalizeKeys } from '../utils/keys';
import type { ForceReleaseOptions, HeldLock, ListHeldOptions } from './held-lock.interface';

/** Most locks one `list` call returns. @internal */
export const MAX_LIST_LIMIT = 100_000;
/** Locks one `list` call returns when no `limit` is given. @internal */
export const DEFAULT_LIST_LIMIT = 1_000;
const MAX_REASON = 500;

function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/** `prefix` and `limit` of a list call, checked before any I/O. @internal */
export function listQuery(options: ListHeldOptions): { prefix: string; limit: number } {
  const { prefix = '', limit = DEFAULT_LIST_LIMIT } = options;
  if (typeof prefix !== 'string')
    throw argumentError('prefix', Messages.adminPrefix(shown(prefix)));
  if (
    typeof limit !== 'number' ||
    !Number.isInteger(limit) ||
    limit < 1 ||
    limit > MAX_LIST_LIMIT
  ) {
    throw argumentError('limit', Messages.adminLimit(MAX_LIST_LIMIT, shown(limit)));
  }
  return { prefix, limit };
}

/**
 * The stored key (without `keyPrefix`) a force-release of `key` frees, and the operator's reason,
 * checked before any I/O.
 * @internal
 */
export function forceReleaseTarget(
  key: unknown,
  options: ForceReleaseOptions,
): { stored: string; key: string; reason: string | undefined } {
  const [only] = normalizeKeys(key);
  const { reason, kind = 'lock', permit = 0 } = options;
  if (reason !== undefined && (typeof reason !== 'string' || reason.length > MAX_REASON)) {
    throw argumentError('reason', Messages.adminReason(shown(reason)));
  }
  if (kind !== 'lock' && kind !== 'leader')
    throw argumentError('kind', Messages.adminKind(shown(kind)));
  if (typeof permit !== 'number' || !Number.isInteger(permit) || permit < 0) {
    throw argumentError('permit', Messages.adminPermit(shown(permit)));
  }
  const stored = kind === 'leader' ? leaderKey(only) : permitKey(only, permit);
  return { stored, key: only, reason };
}

/** The backend's `list`, or the typed error saying it has none. @internal */
export function listOf(backend: LockBackend, store: string): NonNullable<LockBackend['list']> {
  if (typeof backend.list !== 'function') {
    throw new LockOperationUnsupportedError(
      store,
      'list',
      Messages.adminUnsupported(store, backend.name, 'list'),
    );
  }
  return backend.list.bind(backend);
}

/** The backend's `forceRelease`, or the typed error saying it has none. @internal */
export function forceReleaseOf(
  backend: LockBackend,
  store: string,
): NonNullable<LockBackend['forceRelease']> {
  if (typeof backend.forceRelease !== 'function') {
    throw new LockOperationUnsupportedError(
      store,
      'forceRelease',
      Messages.adminUnsupported(store, backend.name, 'forceRelease'),
    );
  }
  return backend.forceRelease.bind(backend);
}

/** What a backend listed, read back into `HeldLock`s (kind, permit), sorted by key. @internal */
export function toHeldLocks(store: string, found: BackendHeldKey[]): HeldLock[] {
  return found
    .map((held): HeldLock => {
      const described = describeKey(held.key);
      return {
        key: described.key,
        store,
        kind: described.kind,
        identity: held.identity,
        fencingToken: held.fencingToken,
        expiresAt: held.expiresAt,
        ...(described.permit === undefined ? {} : { permit: described.permit }),
      };
    })
    .sort((a, b) =>
      a.key < b.key
        ? -1
        : a.key > b.key
          ? 1
          : (a.permit ?? 0) - (b.permit ?? 0) || a.expiresAt - b.expiresAt,
    );
}

/** Lists the held locks of one backend (the CLI and `LockAdmin` share it). @internal */
export async function listHeld(
  backend: LockBackend,
  store: string,
  options: ListHeldOptions,
): Promise<HeldLock[]> {
  const query = listQuery(options);
  const list = listOf(backend, store);
  return toHeldLocks(store, await list(query));
}
