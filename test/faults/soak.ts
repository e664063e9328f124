/**
 * `npm run soak` (outside CI): SOAK_SECTIONS critical sections (default 100k) by 4 worker processes
 * on 3 Redis instances while a seeded chaos loop kills, pauses or restarts a random minority
 * instance every second or two. Prints the seed, the faults and the checkers' verdict; exits 1 on any
 * violation. Bounded by SOAK_MAX_S (default 900 s).
 */
import { Redis } from 'ioredis';
import { RedisFleet } from '../support/redis-fleet';
import { startReplica, stopReplica, type Replica } from '../support/replicas';
import { addStats, type RunStats } from './checkers';

const SECTIONS = Number(process.env.SOAK_SECTIONS ?? 100_000);
const MAX_S = Number(process.env.SOAK_MAX_S ?? 900);
const seed = Number(process.env.SOAK_SEED ?? Date.now() % 1_000_000);

/** mulberry32: small, seeded, good enough for a chaos schedule. */
function rng(a: number): () => number {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

async function main(): Promise<number> {
  const random = rng(seed);
  console.log(`soak: ${SECTIONS} sections, seed ${seed}`);
  const [fleet, res] = await Promise.all([RedisFleet.start(3), RedisFleet.start(1)]);
  const resource = new Redis(res.urls[0]);
  const workers: Replica[] = await Promise.all(
    Array.from({ length: 4 }, () =>
      startReplica('../faults/worker', {
        REDIS_URLS: fleet.urls.join(','),
        RESOURCE_URL: res.urls[0],
      }),
    ),
  );
  const deadline = Date.now() + MAX_S * 1000;
  let chaos = 0;
  let stop = false;
  const chaosLoop = (async () => {
    while (!stop && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1_000 + random() * 1_000));
      const node = fleet.nodes[Math.floor(random() * 3)];
      const roll = random();
      chaos += 1;
      if (roll < 0.4) {
        // Back empty after 1.1 s, inside the 2 s TTL: safe while only one instance at a time loses data.
        await node.restart(1_100);
      } else if (roll < 0.7) {
        node.pause();
        await new Promise((r) => setTimeout(r, 800));
        node.resume();
      } else {
        await node.kill();
        await new Promise((r) => setTimeout(r, 2_500)); // past the TTL: the delayed-restart rule
        await node.start();
      }
    }
  })();
  let total = addStats([]);
  const perBatch = 250;
  while (total.runs < SECTIONS && Date.now() < deadline) {
    const results = await Promise.all(
      workers.map(
        (w) =>
          new Promise<RunStats>((resolve) => {
            w.child.once('message', (m: { result: RunStats }) => resolve(m.result));
            w.child.send({
              op: 'run',
              key: 'soak',
              runs: perBatch,
              ttl: 2_000,
              autoExtend: true,
              workMs: 1,
              wait: 30_000,
            });
          }),
      ),
    );
    total = addStats([total, ...results]);
    process.stdout.write(
      `\r${total.runs} sections, ${chaos} chaos events, ${total.violations} violations`,
    );
  }
  stop = true;
  await chaosLoop;
  const counter = Number((await resource.get('ctr:soak')) ?? 0);
  const lost = total.runs - counter;
  console.log(
    `\nsoak done: ${total.runs} sections, ${chaos} chaos events (seed ${seed}): ${total.violations} overlaps, ${lost} lost updates, ${total.rejected} fenced rejections, ${total.unavailable} unavailable, ${total.errors} errors`,
  );
  await Promise.all(workers.map((w) => stopReplica(w, 'SIGKILL')));
  await resource.quit();
  await fleet.stop();
  await res.stop();
  return total.violations + lost + total.rejected + total.errors === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
