import type { Etcd3, IOptions } from 'etcd3';
import type { BackendHealth } from '../backend/lock-backend.interface';
import { failFastClient, type EtcdConnection } from './etcd-connection';
import type { ResolvedEtcdOptions } from './resolve-etcd-options';

/** Settings of a user client that probe clients must share (TLS, auth, channel options). */
type Shared = Pick<IOptions, 'credentials' | 'auth' | 'grpcOptions'>;

/**
 * The backend's health: the cluster's voting members (from the member list) and how many of them
 * answer a status call of their own within the command timeout. One small fail-fast client per
 * member, created on the first probe and closed with the backend (the lock client balances calls
 * over the members, so it cannot ask a given one).
 * @internal
 */
export class EtcdHealth {
  private readonly probes = new Map<string, Etcd3>();
  private readonly shared: Shared;

  constructor(
    private readonly conn: EtcdConnection,
    private readonly options: ResolvedEtcdOptions,
  ) {
    const source = options.client
      ? ((options.client as unknown as { options?: IOptions }).options ?? { hosts: [] })
      : options.clientOptions;
    this.shared = {
      credentials: source.credentials,
      auth: source.auth,
      grpcOptions: source.grpcOptions,
    };
  }

  /** Never throws: a cluster that does not list its members counts every configured host as down. */
  async check(): Promise<BackendHealth> {
    let members: string[][];
    try {
      const list = await this.conn.call((o) => this.conn.client.cluster.memberList({}, o), false);
      members = list.members.filter((m) => !m.isLearner).map((m) => m.clientURLs);
    } catch {
      const instances = Math.max(1, this.options.hosts.length);
      return { instances, up: 0, quorum: Math.floor(instances / 2) + 1 };
    }
    const answers = await Promise.all(members.map((urls) => this.answers(urls)));
    const up = answers.filter(Boolean).length;
    return { instances: members.length, up, quorum: Math.floor(members.length / 2) + 1 };
  }

  close(): void {
    for (const probe of this.probes.values()) probe.close();
    this.probes.clear();
  }

  private answers(urls: string[]): Promise<boolean> {
    if (urls.length === 0) return Promise.resolve(false);
    const id = urls.join(',');
    let probe = this.probes.get(id);
    if (!probe) {
      probe = failFastClient(urls, this.shared, this.conn.timeout);
      this.probes.set(id, probe);
    }
    const client = probe;
    return this.conn
      .call((o) => client.maintenance.status(o), false)
      .then(
        () => true,
        () => false,
      );
  }
}
