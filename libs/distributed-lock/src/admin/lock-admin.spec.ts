import { Test } from '@nestjs/testing';
import { DistributedLockModule } from '../distributed-lock.module';
import { InvalidLockArgumentError } from '../errors/invalid-lock-argument.error';
import { LockOperationUnsupportedError } from '../errors/lock-operation-unsupported.error';
import { InMemoryLockBackend } from '../testing/in-memory.backend';
import { LockAdmin } from './lock-admin';

/** The in-memory kit without the optional admin methods: a backend written before LockAdmin. */
function oldBackend(): InMemoryLockBackend {
  const backend = new InMemoryLockBackend();
  Object.defineProperty(backend, 'list', { value: undefined });
  Object.defineProperty(backend, 'forceRelease', { value: undefined });
  return backend;
}

async function adminOver(backend: InMemoryLockBackend, stores = {}) {
  const moduleRef = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ backend, stores, logger: false })],
  }).compile();
  await moduleRef.init();
  return { moduleRef, admin: moduleRef.get(LockAdmin) };
}

describe('LockAdmin', () => {
  it('rejects bad arguments with InvalidLockArgumentError naming the field, before any store call', async () => {
    const backend = new InMemoryLockBackend();
    const list = jest.spyOn(backend, 'list');
    const force = jest.spyOn(backend, 'forceRelease');
    const { moduleRef, admin } = await adminOver(backend);
    const bad: Array<[Promise<unknown>, string]> = [
      [admin.list({ limit: 0 }), 'limit'],
      [admin.list({ limit: 1.5 }), 'limit'],
      [admin.list({ limit: 100_001 }), 'limit'],
      [admin.list({ prefix: 7 as unknown as string }), 'prefix'],
      [admin.list({ store: 'nope' }), 'store'],
      [admin.forceRelease(''), 'key'],
      [admin.forceRelease('k', { store: 'nope' }), 'store'],
      [admin.forceRelease('k', { reason: 'x'.repeat(501) }), 'reason'],
      [admin.forceRelease('k', { kind: 'tick' as 'lock' }), 'kind'],
      [admin.forceRelease('k', { permit: -1 }), 'permit'],
    ];
    for (const [call, field] of bad) {
      await expect(call).rejects.toBeInstanceOf(InvalidLockArgumentError);
      await expect(call).rejects.toMatchObject({ field });
    }
    expect(list).not.toHaveBeenCalled();
    expect(force).not.toHaveBeenCalled();
    await moduleRef.close();
  });

  it('frees the leader key or a permit key with kind / permit', async () => {
    const backend = new InMemoryLockBackend();
    const { moduleRef, admin } = await adminOver(backend);
    backend.holdElsewhere('relay:leader');
    backend.holdElsewhere('export:permit:2');
    expect(await admin.forceRelease('relay')).toBe(false);
    expect(await admin.forceRelease('relay', { kind: 'leader' })).toBe(true);
    expect(await admin.forceRelease('export', { permit: 2 })).toBe(true);
    expect(await admin.list()).toEqual([]);
    await moduleRef.close();
  });

  it('throws LockOperationUnsupportedError for a backend without list / forceRelease', async () => {
    const { moduleRef, admin } = await adminOver(new InMemoryLockBackend(), {
      old: oldBackend(),
    });
    await expect(admin.list({ store: 'old' })).rejects.toMatchObject({
      name: 'LockOperationUnsupportedError',
      store: 'old',
      operation: 'list',
    });
    await expect(admin.forceRelease('k', { store: 'old' })).rejects.toBeInstanceOf(
      LockOperationUnsupportedError,
    );
    await expect(admin.list()).resolves.toEqual([]);
    await moduleRef.close();
  });
});
