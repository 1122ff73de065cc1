import type { Etcd3, IWatchResponse } from 'etcd3';
import { keys } from './keys.js';
import type { Watch } from './store.js';

/**
 * The cluster's certificate authority in etcd. The CA key is written once, by the first
 * manager, in a transaction that only creates (so two managers starting together agree on
 * one CA). The join secret is kept in clear, as Swarm keeps its tokens, so it can be printed
 * again: it guards less than the CA key stored beside it. Issued certificates are an allow-list
 * per identity (`<role>/<name>` -> serials still honoured): revoking is deleting the entry,
 * and a node's entry goes in the same transaction as its record (node rm).
 */
export interface StoredCa {
  readonly certPem: string;
  readonly keyPem: string;
  /** While a rotation runs: the old root (still trusted) and the new root cross-signed by it. */
  readonly previousPem?: string;
  readonly crossPem?: string;
}

export interface StoredPki {
  readonly ca: StoredCa;
  /** The worker join token's secret. */
  readonly joinSecret: string;
}

export type Issued = ReadonlyMap<string, readonly string[]>;

export interface PkiStore {
  /** Stores `candidate` unless a CA exists; returns what etcd holds. */
  init(candidate: StoredPki): Promise<StoredPki>;
  get(): Promise<StoredPki | undefined>;
  setJoinSecret(secret: string): Promise<void>;
  /** Honours `serial` for role/name, keeping the newest `keep` serials of that identity. */
  recordIssued(role: string, name: string, serial: string, keep: number): Promise<void>;
  /** The first certificate of role/name: false (nothing written) if that identity has one already. */
  recordFirst(role: string, name: string, serial: string): Promise<boolean>;
  /**
   * A renewal: honours `serial` beside `current` only while `current` is still honoured (a
   * renewal racing a revocation must not bring the identity back); false if it is not.
   */
  recordRenewal(role: string, name: string, current: string, serial: string, keep: number): Promise<boolean>;
  /** The serials honoured for role/name now (read from etcd, not a cache). */
  getIssued(role: string, name: string): Promise<string[] | undefined>;
  /** The current worker join secret (read from etcd: another manager may have rotated it). */
  getJoinSecret(): Promise<string>;
  /** Revokes every certificate of role/name; the number revoked. */
  revoke(role: string, name: string): Promise<number>;
  listIssued(): Promise<{ issued: Map<string, string[]>; revision: number }>;
  /** Replaces the CA if it is still the one whose certificate is `expected`; false otherwise. */
  replaceCa(expected: string, next: StoredCa): Promise<boolean>;
  /** Each change of the CA record. */
  watchCa(onChange: (ca: StoredCa) => void, onError: (err: unknown) => void): Promise<Watch>;
  /** During a rotation: nodes that renewed from the new CA. */
  markRotated(node: string): Promise<void>;
  listRotated(): Promise<string[]>;
  clearRotated(): Promise<void>;
  /** Each change of the allow-list after `fromRevision`: identity `role/name` and its serials (undefined = revoked). */
  watchIssued(fromRevision: number, onChange: (identity: string, serials: string[] | undefined) => void, onError: (err: unknown) => void): Promise<Watch>;
}

export function createPkiStore(client: Etcd3, io: <T>(doing: string, fn: () => Promise<T>) => Promise<T>): PkiStore {
  const parseSerials = (text: string): string[] => {
    const v = JSON.parse(text) as { serials?: unknown };
    return Array.isArray(v.serials) ? v.serials.filter((s): s is string => typeof s === 'string') : [];
  };
  return {
    init: (candidate) =>
      io('initialising the cluster CA', async () => {
        const res = await client
          .if(keys.pkiCa, 'Create', '==', 0)
          .then(client.put(keys.pkiCa).value(JSON.stringify(candidate.ca)), client.put(keys.pkiJoin('worker')).value(candidate.joinSecret))
          .else(client.get(keys.pkiCa), client.get(keys.pkiJoin('worker')))
          .commit();
        if (res.succeeded) return candidate;
        const ca = res.responses[0]?.response_range?.kvs[0]?.value.toString();
        const join = res.responses[1]?.response_range?.kvs[0]?.value.toString();
        if (!ca) throw new Error('the cluster CA vanished while reading it');
        return { ca: JSON.parse(ca) as StoredPki['ca'], joinSecret: join ?? '' };
      }),
    get: () =>
      io('reading the cluster CA', async () => {
        const ca = await client.get(keys.pkiCa).string();
        if (!ca) return undefined;
        return { ca: JSON.parse(ca) as StoredPki['ca'], joinSecret: (await client.get(keys.pkiJoin('worker')).string()) ?? '' };
      }),
    setJoinSecret: (secret) => io('rotating the join token', async () => void (await client.put(keys.pkiJoin('worker')).value(secret))),
    recordIssued: (role, name, serial, keep) =>
      io(`recording the certificate of ${role} ${name}`, async () => {
        // Read-modify-write, retried on a concurrent change of the same entry.
        for (;;) {
          const res = await client.get(keys.pkiIssued(role, name)).exec();
          const kv = res.kvs[0];
          const serials = kv ? parseSerials(kv.value.toString()) : [];
          const next = JSON.stringify({ serials: [...serials.filter((s) => s !== serial), serial].slice(-keep) });
          const txn = await client
            .if(keys.pkiIssued(role, name), 'Mod', '==', kv ? Number(kv.mod_revision) : 0)
            .then(client.put(keys.pkiIssued(role, name)).value(next))
            .commit();
          if (txn.succeeded) return;
        }
      }),
    recordFirst: (role, name, serial) =>
      io(`recording the first certificate of ${role} ${name}`, async () => {
        const res = await client
          .if(keys.pkiIssued(role, name), 'Create', '==', 0)
          .then(client.put(keys.pkiIssued(role, name)).value(JSON.stringify({ serials: [serial] })))
          .commit();
        return res.succeeded;
      }),
    recordRenewal: (role, name, current, serial, keep) =>
      io(`recording the renewed certificate of ${role} ${name}`, async () => {
        for (;;) {
          const kv = (await client.get(keys.pkiIssued(role, name)).exec()).kvs[0];
          const serials = kv ? parseSerials(kv.value.toString()) : [];
          if (!kv || !serials.includes(current)) return false; // revoked meanwhile
          const next = JSON.stringify({ serials: [...serials.filter((s) => s !== serial), serial].slice(-keep) });
          const txn = await client.if(keys.pkiIssued(role, name), 'Mod', '==', Number(kv.mod_revision)).then(client.put(keys.pkiIssued(role, name)).value(next)).commit();
          if (txn.succeeded) return true;
        }
      }),
    getIssued: (role, name) =>
      io(`reading the certificates of ${role} ${name}`, async () => {
        const v = await client.get(keys.pkiIssued(role, name)).string();
        return v === null ? undefined : parseSerials(v);
      }),
    getJoinSecret: () => io('reading the join token', async () => (await client.get(keys.pkiJoin('worker')).string()) ?? ''),
    replaceCa: (expected, next) =>
      io('rotating the cluster CA', async () => {
        const kv = (await client.get(keys.pkiCa).exec()).kvs[0];
        if (!kv || (JSON.parse(kv.value.toString()) as StoredCa).certPem !== expected) return false;
        const txn = await client.if(keys.pkiCa, 'Mod', '==', Number(kv.mod_revision)).then(client.put(keys.pkiCa).value(JSON.stringify(next))).commit();
        return txn.succeeded;
      }),
    watchCa: async (onChange, onError) => {
      const watcher = await client.watch().key(keys.pkiCa).create();
      watcher.on('put', (kv) => onChange(JSON.parse(kv.value.toString()) as StoredCa));
      watcher.on('error', onError);
      return { cancel: () => watcher.cancel() };
    },
    markRotated: (node) => io('recording a renewal during a CA rotation', async () => void (await client.put(keys.pkiRotated(node)).value('1'))),
    listRotated: () => io('listing renewals during a CA rotation', async () => Object.keys(await client.getAll().prefix(keys.pkiRotatedPrefix).strings()).map((k) => k.slice(keys.pkiRotatedPrefix.length))),
    clearRotated: () => io('ending a CA rotation', async () => void (await client.delete().prefix(keys.pkiRotatedPrefix))),
    revoke: (role, name) =>
      io(`revoking the certificates of ${role} ${name}`, async () => {
        const res = await client.delete().key(keys.pkiIssued(role, name)).getPrevious();
        return res[0] ? parseSerials(res[0].value.toString()).length : 0;
      }),
    listIssued: () =>
      io('listing issued certificates', async () => {
        const res = await client.getAll().prefix(keys.pkiIssuedPrefix).exec();
        const issued = new Map<string, string[]>();
        for (const kv of res.kvs) issued.set(kv.key.toString().slice(keys.pkiIssuedPrefix.length), parseSerials(kv.value.toString()));
        return { issued, revision: Number(res.header.revision) };
      }),
    watchIssued: async (fromRevision, onChange, onError) => {
      const watcher = await client.watch().prefix(keys.pkiIssuedPrefix).startRevision(String(fromRevision + 1)).create();
      watcher.on('data', (res: IWatchResponse) => {
        for (const ev of res.events) {
          const id = ev.kv.key.toString().slice(keys.pkiIssuedPrefix.length);
          onChange(id, ev.type === 'Delete' ? undefined : parseSerials(ev.kv.value.toString()));
        }
      });
      watcher.on('error', onError);
      return { cancel: () => watcher.cancel() };
    },
  };
}
