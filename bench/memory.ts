/**
 * Memory and timer-leak benchmark (run by `npm run bench` with --expose-gc): 100k acquire/release
 * cycles, then 10k locks held at once with auto-extension for several extension periods. Reports the
 * heap and the active timers/handles before and after, and the extension traffic. Writes docs/MEMORY.md.
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Test } from '@nestjs/testing';
import { Redis } from 'ioredis';
import { DistributedLockModule, LockService } from '../libs/distributed-lock/src';
import { LockManager } from '../libs/distributed-lock/src/lock-manager';
import { RedisFleet } from '../test/support/redis-fleet';

const gc = (globalThis as { gc?: () => void }).gc;
const CYCLES = Number(process.env.MEM_CYCLES ?? 100_000);
const HELD = Number(process.env.MEM_HELD ?? 10_000);
const HOLD_MS = Number(process.env.MEM_HOLD_MS ?? 6_000);
const TTL = 2_000;

function heapMb(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 1_048_576;
}
const handles = () => process.getActiveResourcesInfo().length;
/** Locks the module still tracks (held, and running with auto-extension): each owns a timer. */
const tracked = (manager: LockManager) => manager.tracked;

async function scriptCalls(admin: Redis[]): Promise<number> {
  let calls = 0;
  for (const c of admin) {
    const info = await c.info('commandstats');
    for (const m of info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)) calls += Number(m[1]);
  }
  return calls;
}

async function main(): Promise<void> {
  if (!gc) throw new Error('run with node --expose-gc');
  const fleet = await RedisFleet.start(3);
  const admin = fleet.urls.map((u) => new Redis(u));
  const app = await Test.createTestingModule({
    imports: [DistributedLockModule.forRoot({ connections: fleet.urls, logger: false })],
  }).compile();
  await app.init();
  const locks = app.get(LockService);
  const manager = app.get(LockManager);
  const rows: string[] = [];
  try {
    for (let i = 0; i < 5_000; i += 1) await (await locks.acquire(`warm:${i % 100}`)).release();
    const base = { heap: heapMb(), timers: tracked(manager), handles: handles() };
    rows.push(
      `| start (after 5k warm-up cycles) | ${base.heap.toFixed(1)} | ${base.timers} | ${base.handles} | |`,
    );

    const t0 = performance.now();
    let done = 0;
    await Promise.all(
      Array.from({ length: 64 }, async (_, w) => {
        for (let i = w; i < CYCLES; i += 64) {
          await (await locks.acquire(`cycle:${i % 5_000}`, { ttl: 10_000 })).release();
          done += 1;
        }
      }),
    );
    const cyclesS = (performance.now() - t0) / 1000;
    const afterCycles = { heap: heapMb(), timers: tracked(manager), handles: handles() };
    rows.push(
      `| after ${done.toLocaleString('en-US')} acquire/release cycles (${cyclesS.toFixed(1)} s) | ${afterCycles.heap.toFixed(1)} | ${afterCycles.timers} | ${afterCycles.handles} | ${(afterCycles.heap - base.heap).toFixed(1)} MB vs start |`,
    );

    const callsBefore = await scriptCalls(admin);
    let started = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let allStarted!: () => void;
    const ready = new Promise<void>((r) => (allStarted = r));
    // Ramp up in batches, as real traffic would: 10k acquisitions in one tick are 30k commands in
    // flight at once, which overruns the 500 ms command timeout and fails closed (counted below).
    let failed = 0;
    const runs: Array<Promise<unknown>> = [];
    for (let i = 0; i < HELD; i += 1) {
      runs.push(
        locks
          .runExclusive(
            `held:${i}`,
            async () => {
              started += 1;
              if (started + failed === HELD) allStarted();
              await gate;
            },
            { ttl: TTL },
          )
          .catch(() => {
            failed += 1;
            if (started + failed === HELD) allStarted();
          }),
      );
      if (i % 250 === 249) await new Promise((r) => setTimeout(r, 20));
    }
    await ready;
    const holdStart = performance.now();
    const during = { heap: heapMb(), timers: tracked(manager), handles: handles() };
    await new Promise((r) => setTimeout(r, HOLD_MS));
    const heldFor = (performance.now() - holdStart) / 1000;
    const duringEnd = { heap: heapMb(), timers: tracked(manager), handles: handles() };
    release();
    await Promise.all(runs);
    const callsAfter = await scriptCalls(admin);
    const extendCalls = callsAfter - callsBefore - 2 * started * fleet.nodes.length; // minus acquire + release
    const after = { heap: heapMb(), timers: tracked(manager), handles: handles() };
    rows.push(
      `| ${started.toLocaleString('en-US')} locks held with auto-extension (just acquired${failed ? `; ${failed} acquisitions failed` : ''}) | ${during.heap.toFixed(1)} | ${during.timers} | ${during.handles} | ${(((during.heap - afterCycles.heap) * 1024) / HELD).toFixed(2)} KB per held lock |`,
      `| the same, ${heldFor.toFixed(1)} s later (TTL ${TTL} ms, extended every ${TTL / 2} ms) | ${duringEnd.heap.toFixed(1)} | ${duringEnd.timers} | ${duringEnd.handles} | ${(duringEnd.heap - during.heap).toFixed(1)} MB change while held |`,
      `| after all ${HELD.toLocaleString('en-US')} released | ${after.heap.toFixed(1)} | ${after.timers} | ${after.handles} | ${(after.heap - base.heap).toFixed(1)} MB vs start |`,
    );
    const perLockPerS = extendCalls / fleet.nodes.length / HELD / heldFor;
    const doc = [
      '# Memory',
      '',
      `Generated by \`npm run bench\` (\`bench/memory.ts\`, Node ${process.version} with --expose-gc; heap measured after two full GCs) on ${new Date().toISOString().slice(0, 10)}, 3 local redis-server instances.`,
      '',
      '| moment | heap used (MB) | service tracking entries (held + running) | active handles (ref) | note |',
      '|---|---:|---:|---:|---|',
      ...rows,
      '',
      `Extension traffic while ${HELD.toLocaleString('en-US')} locks were held: ${extendCalls.toLocaleString('en-US')} extend scripts over ${fleet.nodes.length} instances in ${heldFor.toFixed(1)} s, i.e. ${perLockPerS.toFixed(2)} extensions per lock per second (expected ${(1000 / (TTL / 2)).toFixed(2)}: one every ${TTL / 2} ms, half the TTL).`,
      '',
      `Every tracked lock owns its expiry and extension timers (unref'd, so \`process.getActiveResourcesInfo()\` does not list them); the count returns to 0 and the heap to its starting size once the locks are released: nothing is left behind by acquire/release, auto-extension or expiry tracking.`,
      '',
    ].join('\n');
    writeFileSync(join(__dirname, '..', 'docs', 'MEMORY.md'), doc);
    console.log(doc);
    if (after.timers > base.timers || after.heap - base.heap > 20) process.exitCode = 1;
  } finally {
    await app.close();
    await Promise.all(admin.map((c) => c.quit()));
    await fleet.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
