import { Test } from '@nestjs/testing';
import { Etcd3 } from 'etcd3';
import { DistributedLockModule } from '@app/distributed-lock';
import { etcdBackend } from '@app/distributed-lock/etcd';
import { EtcdCluster } from '../support/etcd-cluster';
import { describeLockContract } from './lock-contract';

/**
 * The etcd backend against the lock contract, on a 3-member cluster the harness starts (never the
 * machine's own). "Unavailable" is two of the three members paused with SIGSTOP (no quorum; the third
 * answers nothing that needs one), so every call must give up after `commandTimeout` rather than
 * hang. Leases are whole seconds (1 s at least with these election timeouts): `minTtl`.
 */
let cluster: EtcdCluster;
let admin: Etcd3;

describeLockContract('etcd', {
  minTtl: 1_000,
  async start() {
    cluster = await EtcdCluster.start(3);
    admin = new Etcd3({ hosts: cluster.hosts });
  },
  async stop() {
    admin.close();
    await cluster.stop();
  },
  compile: (metadata, options) =>
    Test.createTestingModule({
      ...metadata,
      imports: [
        DistributedLockModule.forRoot({
          backend: etcdBackend({ hosts: cluster.hosts, commandTimeout: 500 }),
          logger: false,
          ...options,
        }),
        ...(metadata.imports ?? []),
      ],
    }).compile(),
  dropKey: async (key) => {
    await admin.delete().key(`lock:${key}`);
  },
  fenceCounters: async (key) => {
    // A token is the create revision of the lock's key: every later one exceeds the cluster's revision.
    const reply = await admin.kv.range({ key: Buffer.from(`lock:${key}`) });
    return [Number(reply.header.revision)];
  },
  makeUnavailable: () => {
    cluster.members[0].pause();
    cluster.members[1].pause();
  },
  restore: () => cluster.heal(),
});
