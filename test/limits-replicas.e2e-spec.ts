/**
 * Concurrency limits across child-process replicas (api.md, "Concurrency limits"): three Nest apps
 * serving `@Exclusive({ key, limit: 3 })` routes against three real Redis instances; a separate
 * resource Redis counts how many runs are inside at once (the OCCUPY checker).
 */
import type { Redis } from 'ioredis';
import { closeAll, delay, inspectors } from './support/lock-app';
import { RedisFleet } from './support/redis-fleet';
import { startReplica, stopReplica, type Replica } from './support/replicas';

jest.setTimeout(120_000);

describe('concurrency limits across replicas (3 apps, 3 Redis instances)', () => {
  let fleet: RedisFleet;
  let resourceFleet: RedisFleet;
  let resource: Redis;
  let replicas: Replica[] = [];
  let ports: number[] = [];
  let seq = 0;

  const portOf = (r: Replica) =>
    new Promise<number>((resolve) => {
      const on = (m: { port?: number }) => {
        if (m.port === undefined) return;
        r.child.off('message', on);
        resolve(m.port);
      };
      r.child.on('message', on);
      r.child.send({ op: 'port' });
    });

  /** `n` concurrent POSTs to `route`, spread over the replicas; their statuses. */
  const burst = (route: 'throw' | 'wait', id: string, n: number) =>
    Promise.all(
      Array.from({ length: n }, (_, i) =>
        fetch(`http://127.0.0.1:${ports[i % ports.length]}/exports/${route}/${id}`, {
          method: 'POST',
        }).then((r) => r.status),
      ),
    );

  const seen = async (id: string) => ({
    most: Number((await resource.get(`occ-max:${id}`)) ?? 0),
    runs: Number((await resource.hget('runs', id)) ?? 0),
  });

  beforeAll(async () => {
    [fleet, resourceFleet] = await Promise.all([RedisFleet.start(3), RedisFleet.start(1)]);
    [resource] = inspectors(resourceFleet.urls);
    replicas = await Promise.all(
      Array.from({ length: 3 }, () =>
        startReplica('limited-replica', {
          REDIS_URLS: fleet.urls.join(','),
          RESOURCE_URL: resourceFleet.urls[0],
        }),
      ),
    );
    ports = await Promise.all(replicas.map(portOf));
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => stopReplica(r, 'SIGKILL')));
    await closeAll([resource]);
    await fleet.stop();
    await resourceFleet.stop();
  });

  it('30 concurrent requests: never more than 3 runs at once, 3 reached, 409 for the rest', async () => {
    const id = `throw-${(seq += 1)}`;
    const statuses = await burst('throw', id, 30);
    const { most, runs } = await seen(id);
    expect(statuses.every((s) => s === 201 || s === 409)).toBe(true);
    expect(statuses.filter((s) => s === 201)).toHaveLength(runs);
    expect(statuses.filter((s) => s === 409).length).toBeGreaterThan(0);
    expect(most).toBe(3);
  });

  it("with onBusy 'wait' every one of 30 requests completes, at most 3 at once", async () => {
    const id = `wait-${(seq += 1)}`;
    const statuses = await burst('wait', id, 30);
    const { most, runs } = await seen(id);
    expect(statuses).toEqual(Array.from({ length: 30 }, () => 201));
    expect(runs).toBe(30);
    expect(most).toBe(3);
  });

  it("with onBusy 'wait' and one Redis instance killed midway: all complete, never more than 3", async () => {
    const id = `kill-${(seq += 1)}`;
    const running = burst('wait', id, 30);
    await delay(400);
    await fleet.nodes[1].kill();
    const statuses = await running;
    const { most, runs } = await seen(id);
    expect(statuses).toEqual(Array.from({ length: 30 }, () => 201));
    expect(runs).toBe(30);
    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBe(3);
    await fleet.nodes[1].start();
  });
});
