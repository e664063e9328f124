/**
 * Runs the Nest 12 compatibility scenarios against the Redis instances in REDIS_URLS and exits
 * non-zero when any fails. Started by scripts/check-nest12.sh after it installed the packed library.
 */
import 'reflect-metadata';
import { cronScenario } from './cron.scenario.js';
import { healthScenario } from './health.scenario.js';
import { httpScenario } from './http.scenario.js';
import { lockScenario } from './lock.scenario.js';
import { env, within } from './support.js';

const connections = env('REDIS_URLS').split(',');
const run = `compat:${process.pid}`;
const scenarios: [string, (c: string[], run: string) => Promise<string>][] = [
  ['LockService', lockScenario],
  ['@Cron @Exclusive x3 replicas', cronScenario],
  ['@Exclusive POST route', httpScenario],
  ['nestjs-distributed-lock/terminus on @nestjs/terminus 12', healthScenario],
];

let failed = 0;
for (const [i, [name, scenario]] of scenarios.entries()) {
  const started = Date.now();
  try {
    const detail = await within(45_000, name, scenario(connections, `${run}:${i}`));
    console.log(`ok   ${name}: ${detail} (${Date.now() - started} ms)`);
  } catch (e) {
    failed += 1;
    console.log(`FAIL ${name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
}
process.exit(failed === 0 ? 0 : 1);
