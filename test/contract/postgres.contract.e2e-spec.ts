import { Test } from '@nestjs/testing';
import { Pool } from 'pg';
import { DistributedLockModule } from '@app/distributed-lock';
import { postgresBackend } from '@app/distributed-lock/postgres';
import { PostgresServer } from '../support/postgres-server';
import { describeLockContract } from './lock-contract';

/**
 * The PostgreSQL backend against the lock contract, on a throwaway server the harness starts (never
 * the machine's own). "Unavailable" is the server paused with SIGSTOP (sockets open, no answers, new
 * connections stuck in the backlog), so every call must give up after the backend's timeout rather
 * than hang; another replica is a second Nest app with its own backend and pool on the same database.
 */
let server: PostgresServer;
let admin: Pool;

describeLockContract('postgres', {
  async start() {
    server = await PostgresServer.start();
    admin = new Pool({ connectionString: server.connectionString, max: 2 });
    admin.on('error', () => undefined);
  },
  async stop() {
    await admin.end();
    await server.stop();
  },
  compile: (metadata, options) =>
    Test.createTestingModule({
      ...metadata,
      imports: [
        DistributedLockModule.forRoot({
          backend: postgresBackend({ connectionString: server.connectionString, timeout: 1_500 }),
          logger: false,
          ...options,
        }),
        ...(metadata.imports ?? []),
      ],
    }).compile(),
  dropKey: async (key) => {
    await admin.query('DELETE FROM distributed_locks WHERE key = $1', [key]);
  },
  fenceCounters: async (key) => {
    const { rows } = await admin.query<{ token: string }>(
      'SELECT fencing_token::text AS token FROM distributed_locks WHERE key = $1',
      [key],
    );
    return rows.map((row) => Number(row.token));
  },
  makeUnavailable: () => server.pause(),
  restore: () => server.resume(),
});
