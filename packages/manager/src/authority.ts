import { createHash, X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { alreadyExists, invalidArgument, nameKey, parseName, permissionDenied, unauthenticated, unavailable, type Logger } from '@ctnet/core';
import {
  caDigest,
  createCsr,
  createRootCa,
  credentialExists,
  crossSign,
  formatJoinToken,
  generateKeyPair,
  exportKeyPem,
  hashSecret,
  issueCertificate,
  newJoinSecret,
  parseCsr,
  secretMatches,
  verifyPeer,
  writeCredential,
  type Identity,
  type Role,
} from '@ctnet/pki';
import { MANAGER_SERVER_NAME, type ServerCertificates } from '@ctnet/proto';
import type { PkiStore, StoredCa, Watch } from '@ctnet/store';
import type { Clock } from './deps.js';

/**
 * The cluster's certificate authority as a manager runs it: loads (or, on an empty etcd,
 * creates) the root CA, gives this manager its server certificate and the local admin
 * credential, issues node and admin certificates, and answers "who is calling?" for every
 * call from a cache of the issued-certificate allow-list kept current by an etcd watch.
 */
export interface Authority {
  readonly ready: boolean;
  /** Every root trusted now, PEM (public: joining agents check it against their token). */
  rootsPem(): string;
  /** Loads or creates the CA; idempotent. Throws (UNAVAILABLE) while etcd does not answer. */
  load(): Promise<void>;
  /** The verified identity behind a peer certificate, or UNAUTHENTICATED naming why not. */
  identify(peer: Buffer | undefined, roles: readonly Role[]): Promise<Identity>;
  /** A node certificate for the holder of the join secret; `known` says whether a node record has that name. */
  join(secret: string, csrPem: string, known: (node: string) => boolean): Promise<{ certPem: string; caPem: string }>;
  renew(caller: Identity, csrPem: string): Promise<{ certPem: string; caPem: string }>;
  joinToken(rotate: boolean): Promise<string>;
  issueAdmin(name: string, csrPem: string): Promise<{ certPem: string; caPem: string }>;
  revokeAdmin(name: string): Promise<number>;
  /**
   * Rolls the root CA: a new root, cross-signed by the old one, signs from now on while both
   * are trusted; agents are told to renew at once; when every node has (or `force`, or after
   * `waitMs`), the old root is dropped. Called again while one runs, it waits for that one.
   */
  rotateCa(force: boolean, waitMs?: number): Promise<{ digest: string; renewed: number; total: number; pending: string[]; finished: boolean }>;
  close(): Promise<void>;
}

const ADMIN_TTL_MS = 365 * 86_400_000;
const MANAGER_TTL_MS = 90 * 86_400_000;
const ADMIN_KEEP = 64; // several operators may share one admin name
const HINT = 'use the admin credential a manager writes to <data-dir>/admin (ctmgr --tls-dir DIR), or an agent\'s node certificate (ctagent run --join-token TOKEN)';

export function createAuthority(deps: {
  pki: PkiStore;
  clock: Clock;
  log: Logger;
  certs: ServerCertificates;
  dataDir: string;
  nodeCertTtlMs: number;
  /** An identity (`role/name`) lost all its certificates: end what it has open. */
  onRevoked?(identity: string): void;
  /** The CA rotated: ask the connected agents to renew now. */
  onCaRotated?(): void;
}): Authority {
  const { pki, clock, log } = deps;
  let ca: StoredCa | undefined;
  let caWatch: Watch | undefined;
  let roots: X509Certificate[] = [];
  let issued = new Map<string, Set<string>>();
  let watch: Watch | undefined;
  let closed = false;
  let renewTimer: NodeJS.Timeout | undefined;
  /** Verified certificates by SHA-256 of their DER: signature checks are done once. */
  const verified = new Map<string, Identity | { problem: string }>();
  let bySameBuffer = new WeakMap<Buffer, Identity>();

  const now = () => new Date(clock.now());
  /** Every root trusted now: the current one, and the previous one while a rotation runs. */
  const rootsPem = () => `${[ca!.certPem, ca!.previousPem ?? ''].map((p) => p.trim()).filter(Boolean).join('\n')}\n`;
  const setRoots = (): void => {
    roots = [ca!.certPem, ca!.previousPem].filter((p): p is string => Boolean(p)).map((p) => new X509Certificate(p));
    verified.clear();
    bySameBuffer = new WeakMap();
  };

  const issueServerCert = async (): Promise<void> => {
    const keys = await generateKeyPair();
    const { certPem, identity } = await issueCertificate(ca!, { role: 'manager', name: `manager-${nameKey(hostname()).replace(/[^a-z0-9-]/g, '-')}`.slice(0, 63), publicKey: keys.publicKey, now: now(), ttlMs: MANAGER_TTL_MS, serverName: MANAGER_SERVER_NAME });
    // The chain: the leaf and its root; while a rotation runs, the new root cross-signed by the
    // old one instead, so peers that trust only the old root get through it (a self-signed new
    // root in the chain would stop them).
    const chain = [certPem, ca!.crossPem ?? ca!.certPem].map((p) => p.trim()).join('\n');
    deps.certs.set(`${chain}\n`, await exportKeyPem(keys.privateKey), rootsPem());
    // Renewed at half its life; timers cannot span 90 days, so it wakes daily and looks.
    const due = clock.now() + (identity.notAfter.getTime() - clock.now()) / 2;
    const wake = (): void => {
      clearTimeout(renewTimer);
      renewTimer = setTimeout(() => {
        if (closed) return;
        if (clock.now() < due) return wake();
        void issueServerCert().catch((err: unknown) => {
          log.error('renewing the manager certificate failed; trying again in a minute', { error: String(err) });
          renewTimer = setTimeout(() => void issueServerCert().catch(() => undefined), 60_000);
          renewTimer.unref();
        });
      }, Math.min(Math.max(1000, due - clock.now()), 86_400_000));
      renewTimer.unref();
    };
    wake();
  };

  let rewatching = false;
  const watchIssued = async (): Promise<void> => {
    await watch?.cancel().catch(() => undefined);
    const listed = await pki.listIssued();
    const before = issued;
    issued = new Map([...listed.issued].map(([k, v]) => [k, new Set(v)]));
    // What was revoked while no watch ran still cuts what it has open.
    for (const id of before.keys()) if (!issued.has(id)) deps.onRevoked?.(id);
    watch = await pki.watchIssued(
      listed.revision,
      (id, serials) => {
        if (serials) issued.set(id, new Set(serials));
        else {
          issued.delete(id);
          deps.onRevoked?.(id);
        }
      },
      (err) => {
        // A broken watch would leave revocations unseen: list and watch again (one retry loop).
        if (rewatching || closed) return;
        rewatching = true;
        log.warn('watch of issued certificates failed; reloading', { error: String(err) });
        const retry = (): void => {
          if (closed) return;
          watchIssued().then(
            () => (rewatching = false),
            () => setTimeout(retry, 1000).unref(),
          );
        };
        retry();
      },
    );
  };

  const ensureAdminCredential = async (renew = false): Promise<void> => {
    const dir = join(deps.dataDir, 'admin');
    if (!renew && (await credentialExists(dir))) return; // revoked or not, an operator's choice stands
    const { keyPem, csrPem } = await createCsr('admin');
    const { certPem } = await authority.issueAdmin('admin', csrPem);
    await writeCredential(dir, { caPem: rootsPem(), certPem, keyPem });
    log.info('wrote the admin credential', { dir });
  };

  /**
   * Signs a CSR for role/name and records the serial through `record` (an etcd transaction
   * that may refuse: then nothing is returned and the certificate is never honoured).
   */
  const issue = async (role: 'node' | 'admin', name: string, csrPem: string, ttlMs: number, record: (id: Identity) => Promise<void>) => {
    const csr = await parseCsr(csrPem);
    if (nameKey(csr.name) !== nameKey(name)) throw invalidArgument(`the certificate signing request is for "${csr.name}", not "${name}"; make it for the name you ask for`);
    const { certPem, identity } = await issueCertificate(ca!, { role, name, publicKey: csr.publicKey, now: now(), ttlMs });
    await record(identity);
    return { certPem, caPem: rootsPem() };
  };

  const requireReady = (): void => {
    if (!ca) throw unavailable('the manager has not loaded the cluster CA from etcd yet; retry in a moment');
  };

  const authority: Authority = {
    get ready() {
      return ca !== undefined && deps.certs.ready;
    },

    rootsPem() {
      requireReady();
      return rootsPem();
    },

    async load() {
      if (ca) return;
      let stored = await pki.get();
      if (!stored) {
        const candidate = await createRootCa(`ctnet-${createHash('sha256').update(String(clock.now()) + Math.random()).digest('hex').slice(0, 12)}`, now());
        stored = await pki.init({ ca: candidate, joinSecret: newJoinSecret() });
        if (stored.ca.certPem === candidate.certPem) log.info('created the cluster CA', { digest: caDigest(candidate.certPem) });
      }
      // `ca` is set last: a step that fails here (etcd went away) is retried by the next load().
      await watchIssued();
      ca = stored.ca;
      setRoots();
      try {
        await issueServerCert();
        await ensureAdminCredential();
        await watchCa();
      } catch (err) {
        ca = undefined;
        throw err;
      }
    },

    async identify(peer, allowed) {
      if (!peer) throw unauthenticated(`no valid client certificate of this cluster was presented (none, expired, self-signed, or another cluster's); ${HINT}`);
      requireReady();
      // The same Buffer for every call on one connection (transport's peerCertificate): no hash.
      let v: Identity | { problem: string } | undefined = bySameBuffer.get(peer);
      const fp = v ? '' : createHash('sha256').update(peer).digest('hex');
      v ??= verified.get(fp);
      if (v && !('problem' in v)) bySameBuffer.set(peer, v);
      if (!v) {
        v = verifyPeer(new X509Certificate(peer), roots, now());
        if (verified.size > 10_000) verified.clear();
        if (!('problem' in v)) {
          verified.set(fp, v);
          bySameBuffer.set(peer, v);
        }
      } else if (!('problem' in v) && v.notAfter.getTime() < clock.now()) {
        v = { problem: `its certificate expired at ${v.notAfter.toISOString()}` };
      }
      if ('problem' in v) throw unauthenticated(`the client certificate was refused: ${v.problem}; ${HINT}`);
      if (v.role !== 'manager' && !issued.get(`${v.role}/${v.name}`)?.has(v.serial)) {
        // Not in this manager's copy: it may be newer than the watch (issued a moment ago by
        // another manager). etcd decides.
        const current = await pki.getIssued(v.role, v.name);
        if (current) issued.set(`${v.role}/${v.name}`, new Set(current));
        if (!current?.includes(v.serial)) {
          throw unauthenticated(
            v.role === 'node'
              ? `the certificate of node ${v.name} was revoked (the node was removed); join again with a token: ctagent run --join-token TOKEN`
              : `the admin certificate "${v.name}" was revoked (ctmgr admin-cert rm); get a new one from another admin: ctmgr admin-cert --name NAME --out DIR`,
          );
        }
      }
      if (!allowed.includes(v.role)) {
        throw permissionDenied(v.role === 'node' ? `a node certificate (${v.name}) cannot call the admin API; use an admin credential (ctmgr --tls-dir DIR)` : `an ${v.role} certificate (${v.name}) cannot do this; it needs a ${allowed.join(' or ')} certificate`);
      }
      return v;
    },

    async join(secret, csrPem, known) {
      requireReady();
      // From etcd, not memory: another manager may have rotated it.
      const current = await pki.getJoinSecret();
      if (!current || !secretMatches(secret, hashSecret(current))) {
        throw unauthenticated('the join token is not valid for this cluster (wrong, or rotated): print the current one on a manager with "ctmgr join-token worker"');
      }
      const { name } = await parseCsr(csrPem);
      parseName(name, 'node');
      const taken = alreadyExists(`node ${name} is already in the cluster; to join a host under that name, remove the node first (ctmgr node rm ${name}), or give this host another --node-name`);
      if (known(name)) throw taken;
      // Create-only: of two joins racing for one name, exactly one gets a certificate honoured.
      return issue('node', name, csrPem, deps.nodeCertTtlMs, async (id) => {
        if (!(await pki.recordFirst('node', id.name, id.serial))) throw taken;
        if (ca!.previousPem) await pki.markRotated(id.name);
      });
    },

    async renew(caller, csrPem) {
      requireReady();
      return issue('node', caller.name, csrPem, deps.nodeCertTtlMs, async (id) => {
        if (!(await pki.recordRenewal('node', id.name, caller.serial, id.serial, 2))) {
          throw unauthenticated(`the certificate of node ${caller.name} was revoked (the node was removed); join again with a token: ctagent run --join-token TOKEN`);
        }
        if (ca!.previousPem) await pki.markRotated(id.name);
      });
    },

    async joinToken(rotate) {
      requireReady();
      let secret = await pki.getJoinSecret();
      if (rotate || !secret) {
        secret = newJoinSecret();
        await pki.setJoinSecret(secret);
        log.info('rotated the worker join token');
      }
      return formatJoinToken({ caDigest: caDigest(ca!.certPem), secret });
    },

    async issueAdmin(name, csrPem) {
      requireReady();
      return issue('admin', parseName(name, 'admin'), csrPem, ADMIN_TTL_MS, (id) => pki.recordIssued('admin', id.name, id.serial, ADMIN_KEEP));
    },

    async revokeAdmin(name) {
      requireReady();
      const n = await pki.revoke('admin', parseName(name, 'admin'));
      issued.delete(`admin/${nameKey(name)}`); // at once here; other managers follow their watch
      return n;
    },

    async close() {
      closed = true;
      clearTimeout(renewTimer);
      await watch?.cancel().catch(() => undefined);
      await caWatch?.cancel().catch(() => undefined);
    },

    async rotateCa(force, waitMs = 60_000) {
      requireReady();
      if (!ca!.previousPem) {
        const old = ca!;
        const clusterId = /O=([^,\n]+)/.exec(new X509Certificate(old.certPem).subject)?.[1] ?? 'ctnet';
        const fresh = await createRootCa(clusterId, now(), `ctnet root CA ${now().toISOString()}`);
        const next: StoredCa = { ...fresh, previousPem: old.certPem, crossPem: await crossSign(old, fresh.certPem, now()) };
        await pki.clearRotated();
        if (!(await pki.replaceCa(old.certPem, next))) throw alreadyExists('the CA changed meanwhile (another rotation); run "ctmgr ca rotate" again to follow it');
        log.info('rotating the cluster CA', { from: caDigest(old.certPem), to: caDigest(next.certPem) });
        await adopt(next);
      }
      // Until every node renewed from the new root (nodes are what hold certificates of it).
      const nodes = () => [...issued.keys()].filter((k) => k.startsWith('node/')).map((k) => k.slice('node/'.length)).sort();
      const end = clock.now() + (force ? 0 : waitMs);
      let pending: string[] = [];
      for (;;) {
        const renewed = new Set(await pki.listRotated());
        pending = nodes().filter((n) => !renewed.has(n));
        if (pending.length === 0 || clock.now() >= end) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const total = nodes().length;
      if (pending.length > 0 && !force) {
        return { digest: caDigest(ca!.certPem), renewed: total - pending.length, total, pending, finished: false };
      }
      const current = ca!;
      const finished: StoredCa = { certPem: current.certPem, keyPem: current.keyPem };
      if (!(await pki.replaceCa(current.certPem, finished))) throw alreadyExists('the CA changed meanwhile; run "ctmgr ca rotate" again');
      await pki.clearRotated();
      await adopt(finished);
      log.info('CA rotation finished: the old root is no longer trusted', { digest: caDigest(finished.certPem), pending: pending.join(',') });
      return { digest: caDigest(finished.certPem), renewed: total - pending.length, total, pending, finished: true };
    },
  };

  /** Takes a CA record written by this or another manager. */
  async function adopt(next: StoredCa): Promise<void> {
    if (!ca || (next.certPem === ca.certPem && next.previousPem === ca.previousPem)) return;
    const rotated = next.certPem !== ca.certPem;
    ca = next;
    setRoots();
    await issueServerCert();
    if (rotated) {
      await ensureAdminCredential(true); // this host's admin credential, from the new root
      deps.onCaRotated?.();
    }
  }

  async function watchCa(): Promise<void> {
    await caWatch?.cancel().catch(() => undefined);
    caWatch = await pki.watchCa(
      (next) => void adopt(next).catch((err: unknown) => log.error('taking the rotated CA failed', { error: String(err) })),
      (err) => {
        if (closed) return;
        log.warn('watch of the CA failed; watching again', { error: String(err) });
        setTimeout(() => void watchCa().catch(() => undefined), 1000).unref();
      },
    );
    // What changed before the watch began.
    const stored = await pki.get();
    if (stored) await adopt(stored.ca);
  }

  return authority;
}
