export * from './store.js';
export * from './keys.js';
export { createEtcdStore, type EtcdStoreOptions } from './etcd-store.js';
export { isCompactedError, etcdError } from './etcd-errors.js';
export * from './testing/etcd-server.js';
export * from './etcd-process.js';
export type { PkiStore, StoredPki, StoredCa, Issued } from './pki-store.js';
