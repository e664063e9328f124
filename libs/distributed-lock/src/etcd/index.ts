export { etcdBackend } from './etcd-backend.factory';
export type { EtcdBackendOptions } from './etcd-backend-options.interface';
