/**
 * Without @opentelemetry/api nothing is recorded and nothing fails. This repo has the package
 * installed, so a child process is made unable to resolve it (test/support/hide-opentelemetry.ts),
 * then takes locks, runs an @Exclusive method and an @Exclusive @Cron job. The same child without
 * the hook is the control: there the OpenTelemetry listener is attached.
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { RedisFleet } from './support/redis-fleet';
import type { AbsentReport } from './support/otel-absent-app';

function runChild(urls: string[], hideOpenTelemetry: boolean): Promise<AbsentReport> {
  const support = join(__dirname, 'support');
  const child = fork(join(support, 'otel-absent-app.ts'), [], {
    env: {
      ...process.env,
      REDIS_URLS: urls.join(','),
      TS_NODE_TRANSPILE_ONLY: 'true',
      TS_NODE_PROJECT: join(__dirname, '../tsconfig.json'),
    },
    execArgv: [
      ...['-r', 'ts-node/register', '-r', 'tsconfig-paths/register'],
      ...(hideOpenTelemetry ? ['-r', join(support, 'hide-opentelemetry.ts')] : []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the child did not report within 45 s'));
    }, 45_000);
    let message: { report?: AbsentReport; error?: string } | undefined;
    child.on('message', (m: { report?: AbsentReport; error?: string }) => (message = m));
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (message?.report && code === 0) resolve(message.report);
      else reject(new Error(`child exited with ${code}: ${message?.error ?? 'no report'}`));
    });
  });
}

describe('OpenTelemetry absent', () => {
  let fleet: RedisFleet;
  beforeAll(async () => {
    fleet = await RedisFleet.start(3);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('@opentelemetry/api unresolvable: LockService, @Exclusive and @Cron work; no listener attached', async () => {
    const report = await runChild(fleet.urls, true);
    expect(report.apiResolvable).toBe(false);
    expect(report.listening).toBe(false);
    expect(report.busyWhileHeld).toBe(true);
    expect(report.fencingTokens[1]).toBeGreaterThan(report.fencingTokens[0]);
    expect(report.runExclusive).toBe('ran');
    expect(report.exclusive).toBe('paid 7');
    expect(report.cronRuns).toBeGreaterThanOrEqual(1);
  });

  it('control: the same child with the package resolvable attaches the listener', async () => {
    const report = await runChild(fleet.urls, false);
    expect(report.apiResolvable).toBe(true);
    expect(report.listening).toBe(true);
    expect(report.exclusive).toBe('paid 7');
  });
});
