/**
 * `npm run demo`: three replicas of the example app (src/) against three Redis instances, for about
 * 20 s, with one replica killed midway. Prints which replica ran each cron tick, duplicate runs (must
 * be 0), payments attempted versus accepted, and how long until another replica took over.
 * Exits 0 only when exactly-once held. Uses REDIS_URLS if set; otherwise starts redis-server itself.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, RedisFleet } from '../test/support/redis-fleet';

const RUN_MS = Number(process.env.DEMO_MS ?? 20_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Replica {
  name: string;
  port: number;
  child: ChildProcess;
}

async function startReplica(name: string, urls: string[]): Promise<Replica> {
  const port = await freePort();
  const child = fork(join(__dirname, '../src/main.ts'), [], {
    env: {
      ...process.env,
      REDIS_URLS: urls.join(','),
      PORT: String(port),
      REPLICA: name,
      TS_NODE_TRANSPILE_ONLY: 'true',
      TS_NODE_PROJECT: join(__dirname, '../tsconfig.json'),
    },
    execArgv: ['-r', 'ts-node/register', '-r', 'tsconfig-paths/register'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`replica ${name} exited with ${code}`)));
  });
  return { name, port, child };
}

async function pay(
  replicas: Replica[],
  orderId: string,
  attempts: number,
): Promise<{ ok: number; conflict: number; other: number }> {
  const statuses = await Promise.all(
    Array.from({ length: attempts }, (_, i) =>
      fetch(`http://127.0.0.1:${replicas[i % replicas.length].port}/orders/${orderId}/pay`, {
        method: 'POST',
      })
        .then((r) => r.status)
        .catch(() => 0),
    ),
  );
  return {
    ok: statuses.filter((s) => s === 200).length,
    conflict: statuses.filter((s) => s === 409).length,
    other: statuses.filter((s) => s !== 200 && s !== 409).length,
  };
}

async function main(): Promise<number> {
  const fleet = process.env.REDIS_URLS ? undefined : await RedisFleet.start(3);
  const urls = fleet ? fleet.urls : process.env.REDIS_URLS!.split(',');
  const audit = new Redis(urls[0]);
  const replicas: Replica[] = [];
  try {
    await audit.del(
      'demo:count:report',
      'demo:who:report',
      'demo:payments',
      'demo:warmups',
      'demo:cleanups',
    );
    console.log(`Redis: ${urls.join(', ')}${fleet ? ' (started by the demo)' : ''}`);
    for (const name of ['A', 'B', 'C']) replicas.push(await startReplica(name, urls));
    console.log(
      `Replicas A, B, C listening on ports ${replicas.map((r) => r.port).join(', ')}; running ${RUN_MS / 1000} s\n`,
    );
    const started = Date.now();

    await sleep(RUN_MS * 0.2);
    const payBefore = await pay(replicas, '42', 12);

    await sleep(RUN_MS * 0.2);
    // Kill the replica that ran the most recent tick, the worst moment for it to vanish.
    const who = await audit.hgetall('demo:who:report');
    const lastTick = Math.max(...Object.keys(who).map(Number));
    const victim = replicas.find((r) => r.name === who[String(lastTick)]) ?? replicas[0];
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    const alive = replicas.filter((r) => r !== victim);
    console.log(
      `Killed replica ${victim.name} (SIGKILL) at +${((killedAt - started) / 1000).toFixed(1)} s`,
    );

    await sleep(RUN_MS * 0.2);
    const payAfter = await pay(alive, '43', 12);
    await sleep(RUN_MS * 0.4);

    for (const r of alive) r.child.kill('SIGTERM');
    await Promise.all(
      alive.map(
        (r) =>
          new Promise((res) => (r.child.exitCode !== null ? res(null) : r.child.once('exit', res))),
      ),
    );

    const counts = await audit.hgetall('demo:count:report');
    const owners = await audit.hgetall('demo:who:report');
    const ticks = Object.keys(counts)
      .map(Number)
      .sort((a, b) => a - b);
    const first = ticks[0];
    const last = ticks[ticks.length - 1];
    console.log('\ntick (s)  replica  runs');
    let duplicates = 0;
    let missed = 0;
    for (let t = first; t <= last; t += 1) {
      const n = Number(counts[String(t)] ?? 0);
      if (n > 1) duplicates += 1;
      if (n === 0) missed += 1;
      const mark =
        t * 1000 >= killedAt && (t - 1) * 1000 < killedAt ? `   <- ${victim.name} killed` : '';
      console.log(
        `${String(t - first).padStart(8)}  ${(owners[String(t)] ?? '-').padStart(7)}  ${String(n).padStart(4)}${mark}`,
      );
    }
    const takeover = ticks.find((t) => t * 1000 > killedAt && owners[String(t)] !== victim.name);
    const takeoverMs = takeover === undefined ? NaN : takeover * 1000 - killedAt;
    const payments = await audit.hgetall('demo:payments');
    const warmups = Number((await audit.get('demo:warmups')) ?? 0);

    console.log(`\nticks: ${last - first + 1}, duplicate runs: ${duplicates}, missed: ${missed}`);
    console.log(`ran on: ${[...new Set(Object.values(owners))].sort().join(', ')}`);
    console.log(
      `takeover after killing ${victim.name}: next tick ran on another replica ${takeoverMs} ms later`,
    );
    console.log(
      `payments: order 42: ${payBefore.ok + payBefore.conflict + payBefore.other} attempted across 3 replicas, ${payBefore.ok} accepted, ${payBefore.conflict} answered 409; ` +
        `order 43: ${payAfter.ok + payAfter.conflict + payAfter.other} attempted across 2 replicas, ${payAfter.ok} accepted, ${payAfter.conflict} answered 409; ` +
        `charged: 42 x${payments['42'] ?? 0}, 43 x${payments['43'] ?? 0}`,
    );
    console.log(`@Timeout warm-up ran ${warmups} time(s) across 3 replicas`);
    const ok =
      duplicates === 0 &&
      ticks.length >= 5 &&
      payBefore.ok === 1 &&
      payAfter.ok === 1 &&
      payments['42'] === '1' &&
      payments['43'] === '1' &&
      warmups === 1 &&
      Number.isFinite(takeoverMs);
    console.log(ok ? '\nexactly-once held' : '\nexactly-once VIOLATED');
    return ok ? 0 : 1;
  } finally {
    for (const r of replicas)
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    await audit.quit();
    await fleet?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
