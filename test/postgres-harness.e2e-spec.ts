import { existsSync } from 'node:fs';
import { Client } from 'pg';
import { PostgresServer } from './support/postgres-server';

/** Self-test of the PostgreSQL harness the PostgreSQL lock backend's tests will use. */
describe('PostgresServer harness', () => {
  let server: PostgresServer | undefined;
  const clients: Client[] = [];

  async function connect(): Promise<Client> {
    const client = new Client({ connectionString: server!.connectionString });
    client.on('error', () => undefined); // the server is killed under it on purpose
    clients.push(client);
    await client.connect();
    return client;
  }

  /** Resolves to 'timeout' when `promise` has not settled after `ms`. */
  function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  afterAll(async () => {
    server?.resume();
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await server?.stop();
  });

  it('starts its own server (initdb + boot) on a free port, never 5432', async () => {
    const t0 = performance.now();
    server = await PostgresServer.start();
    const ms = Math.round(performance.now() - t0);
    console.log(`PostgresServer.start() (initdb + boot) took ${ms} ms on port ${server.port}`);
    expect(server.port).not.toBe(5432);
    expect(server.connectionString).toBe(`postgresql://postgres@127.0.0.1:${server.port}/postgres`);
    const client = await connect();
    const { rows } = await client.query<{ dir: string; user: string }>(
      "SELECT current_setting('data_directory') AS dir, current_user AS user",
    );
    expect(rows[0]).toEqual({ dir: server.dataDir, user: 'postgres' });
  });

  it('keeps committed rows across kill() + start() (crash recovery, same port)', async () => {
    const client = await connect();
    await client.query('CREATE TABLE durable (id int PRIMARY KEY, note text NOT NULL)');
    await client.query("INSERT INTO durable VALUES (1, 'survives a crash')");
    const { port } = server!;

    await server!.kill();
    expect(server!.running).toBe(false);
    await expect(client.query('SELECT 1')).rejects.toThrow();

    const t0 = performance.now();
    await server!.start();
    console.log(`restart after kill() took ${Math.round(performance.now() - t0)} ms`);
    expect(server!.port).toBe(port);
    const again = await connect();
    const { rows } = await again.query<{ note: string }>('SELECT note FROM durable WHERE id = 1');
    expect(rows).toEqual([{ note: 'survives a crash' }]);
  });

  it('pause() freezes every query (even statement_timeout), resume() answers them', async () => {
    const client = await connect();
    await client.query("SET statement_timeout = '100ms'");
    await expect(client.query('SELECT 1 AS one')).resolves.toBeDefined();

    server!.pause();
    const pending = client.query<{ one: number }>('SELECT 1 AS one');
    pending.catch(() => undefined);
    expect(await within(pending, 500)).toBe('timeout');
    const newcomer = new Client({ connectionString: server!.connectionString });
    newcomer.on('error', () => undefined);
    clients.push(newcomer);
    const connecting = newcomer.connect();
    connecting.catch(() => undefined);
    expect(await within(connecting, 500)).toBe('timeout');

    server!.resume();
    const answered = await within(pending, 5_000);
    expect(answered).not.toBe('timeout');
    expect(answered !== 'timeout' && answered.rows).toEqual([{ one: 1 }]);
    expect(await within(connecting, 5_000)).not.toBe('timeout');
    await expect(newcomer.query('SELECT 2 AS two')).resolves.toMatchObject({ rows: [{ two: 2 }] });
  });

  it('stop() shuts down and removes the temporary directory', async () => {
    const { baseDir, port } = server!;
    await Promise.all(clients.splice(0).map((c) => c.end().catch(() => undefined)));
    await server!.stop();
    expect(server!.running).toBe(false);
    expect(existsSync(baseDir)).toBe(false);
    const late = new Client({
      connectionString: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    });
    late.on('error', () => undefined);
    await expect(late.connect()).rejects.toThrow();
    await expect(server!.start()).rejects.toThrow(/stopped for good/);
    server = undefined;
  });
});
