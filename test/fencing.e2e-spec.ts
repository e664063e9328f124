import { RedisFleet } from './support/redis-fleet';
import { closeAll, inspectors, lockApp, untilUp, type LockApp } from './support/lock-app';

describe('fencing tokens', () => {
  const apps: LockApp[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  async function replicas(fleet: RedisFleet, n = 2, keyPrefix = 'lock:') {
    const list = await Promise.all(
      Array.from({ length: n }, () => lockApp({ connections: fleet.urls, keyPrefix })),
    );
    apps.push(...list);
    return list.map((a) => a.locks);
  }

  it.each([1, 3, 5])('increase strictly per key across holders on %i instance(s)', async (size) => {
    const fleet = await RedisFleet.start(size);
    try {
      const [a, b] = await replicas(fleet);
      const tokens: number[] = [];
      for (let i = 0; i < 20; i += 1) {
        const lock = await (i % 2 ? a : b).acquire('fenced', { ttl: 5_000 });
        tokens.push(lock.fencingToken);
        await lock.release();
      }
      for (let i = 1; i < tokens.length; i += 1) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);
      const other = await a.acquire('another-key');
      expect(other.fencingToken).toBeGreaterThanOrEqual(1);
      await other.release();
    } finally {
      await fleet.stop();
    }
  });

  it.each([
    [3, 1],
    [5, 2],
  ])(
    'stay monotonic on %i instances while %i of them die and come back empty',
    async (size, minority) => {
      const fleet = await RedisFleet.start(size);
      try {
        const [a, b] = await replicas(fleet);
        const tokens: number[] = [];
        const take = async (i: number) => {
          const lock = await (i % 2 ? a : b).acquire('churn', { ttl: 5_000 });
          tokens.push(lock.fencingToken);
          await lock.release();
        };
        for (let round = 0; round < 3; round += 1) {
          // A different minority each round, so the counters on the instances drift apart.
          const victims = Array.from(
            { length: minority },
            (_, k) => fleet.nodes[(round + k) % size],
          );
          for (let i = 0; i < 5; i += 1) await take(i);
          await Promise.all(victims.map((v) => v.kill()));
          for (let i = 0; i < 5; i += 1) await take(i);
          await Promise.all(victims.map((v) => v.start())); // back with no data: counters lost there
          await Promise.all(apps.map((app) => untilUp(app, size))); // module clients reconnect
          for (let i = 0; i < 5; i += 1) await take(i);
        }
        for (let i = 1; i < tokens.length; i += 1) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]);
      } finally {
        await fleet.stop();
      }
    },
  );

  it('keeps counters in their own namespace, never expiring, and prefixes apart', async () => {
    const fleet = await RedisFleet.start(3);
    try {
      const [a] = await replicas(fleet, 1, 'a:');
      const [b] = await replicas(fleet, 1, 'b:');
      const la = await a.acquire('same', { ttl: 5_000 });
      const lb = await b.acquire('same', { ttl: 5_000 });
      expect(await a.isLocked('same')).toBe(true);
      expect(await b.isLocked('same')).toBe(true);
      const admin = inspectors(fleet.urls);
      for (const c of admin) {
        expect((await c.keys('*')).sort()).toEqual([
          'a:same',
          'b:same',
          'fence:a:same',
          'fence:b:same',
        ]);
        expect(await c.pttl('fence:a:same')).toBe(-1);
        expect(await c.pttl('a:same')).toBeGreaterThan(0);
      }
      await la.release();
      await lb.release();
      for (const c of admin)
        expect((await c.keys('*')).sort()).toEqual(['fence:a:same', 'fence:b:same']);
      await closeAll(admin);
    } finally {
      await fleet.stop();
    }
  });

  it('is visible inside runExclusive through current()', async () => {
    const fleet = await RedisFleet.start(3);
    try {
      const [a] = await replicas(fleet, 1);
      const seen = await a.runExclusive('visible', (lock) => [
        lock.fencingToken,
        a.current()?.fencingToken,
      ]);
      expect(seen[0]).toBeGreaterThan(0);
      expect(seen[1]).toBe(seen[0]);
    } finally {
      await fleet.stop();
    }
  });

  it('stay monotonic after an empty restart of a key granted far faster than once a millisecond', async () => {
    // Counters are floored at the client clock; a hot key gets ahead of a millisecond clock (one grant
    // adds at least 1), so the floor must be fine enough that no Redis can out-grant it.
    const fleet = await RedisFleet.start(1);
    try {
      const [a] = await replicas(fleet, 1);
      const [admin] = inspectors(fleet.urls);
      let last = 0;
      for (let i = 0; i < 200; i += 1) {
        const lock = await a.acquire('hot', { ttl: 1_000 });
        last = lock.fencingToken;
        await lock.release();
      }
      // As if the key had been granted 10,000 more times in this instant: a counter floored at a
      // millisecond clock would now be 10 s ahead of it, one floored at microseconds 10 ms ahead.
      await admin.incrby('fence:lock:hot', 10_000);
      await closeAll([admin]);
      const hot = await a.acquire('hot', { ttl: 1_000 });
      expect(hot.fencingToken).toBeGreaterThan(last + 10_000);
      last = hot.fencingToken;
      await hot.release();
      await fleet.nodes[0].restart(150); // back empty
      await untilUp(apps[0], 1); // module clients reconnect
      const after = await a.acquire('hot', { ttl: 1_000 });
      expect(after.fencingToken).toBeGreaterThan(last);
      await after.release();
    } finally {
      await fleet.stop();
    }
  });

  it('stay monotonic when one instance runs far ahead (a fast clock) and then dies', async () => {
    const fleet = await RedisFleet.start(3);
    try {
      const [a] = await replicas(fleet, 1);
      const [fast] = inspectors([fleet.urls[0]]);
      const ahead = (Date.now() + 3_600_000) * 1_000; // an hour ahead (counters are in microseconds)
      await fast.set('fence:lock:skewed', String(ahead));
      await closeAll([fast]);
      // With instance 2 down, the granting majority must include the fast instance 0.
      await fleet.nodes[2].kill();
      const first = await a.acquire('skewed');
      expect(first.fencingToken).toBeGreaterThan(ahead);
      await first.release();
      // Only the write-back put the high token on instance 1; instance 2 comes back empty. Without
      // the write-back, instances 1 and 2 would now issue clock-based tokens an hour lower.
      await fleet.nodes[2].start();
      await untilUp(apps[0], 3); // module clients reconnect to instance 2 before 0 dies
      await fleet.nodes[0].kill();
      const second = await a.acquire('skewed');
      expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
      await second.release();
    } finally {
      await fleet.stop();
    }
  });
});
