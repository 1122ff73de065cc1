import { createHash, X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { alreadyExists, invalidArgument, nameKey, parseName, permissionDenied, unauthenticated, unavailable, type Logger } from '@ctnet/core';
import {
  caDigest,
  createCsr,
  createRootCa,
  credentialExists,
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
  type RootCa,
} from '@ctnet/pki';
import { MANAGER_SERVER_NAME, type ServerCertificates } from '@ctnet/proto';
import type { PkiStore, Watch } from '@ctnet/store';
import type { Clock } from './deps.js';

/**
 * The cluster's certificate authority as a manager runs it: loads (or, on an empty etcd,
 * creates) the root CA, gives this manager its server certificate and the local admin
 * credential, issues node and admin certificates, and answers "who is calling?" for every
 * call from a cache of the issued-certificate allow-list kept current by an etcd watch.
 */
export interface Authority {
  readonly ready: boolean;
  /** Loads or creates the CA; idempotent. Throws (UNAVAILABLE) while etcd does not answer. */
  load(): Promise<void>;
  /** The verified identity behind a peer certificate, or UNAUTHENTICATED naming why not. */
  identify(peer: Buffer | undefined, roles: readonly Role[]): Identity;
  /** A node certificate for the holder of the join secret. */
  join(secret: string, csrPem: string, isReady: (node: string) => boolean): Promise<{ certPem: string; caPem: string }>;
  renew(caller: Identity, csrPem: string): Promise<{ certPem: string; caPem: string }>;
  joinToken(rotate: boolean): Promise<string>;
  issueAdmin(name: string, csrPem: string): Promise<{ certPem: string; caPem: string }>;
  revokeAdmin(name: string): Promise<number>;
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
}): Authority {
  const { pki, clock, log } = deps;
  let ca: RootCa | undefined;
  let roots: X509Certificate[] = [];
  let joinSecret = '';
  let issued = new Map<string, Set<string>>();
  let watch: Watch | undefined;
  let closed = false;
  let renewTimer: NodeJS.Timeout | undefined;
  /** Verified certificates by SHA-256 of their DER: signature checks are done once. */
  const verified = new Map<string, Identity | { problem: string }>();

  const now = () => new Date(clock.now());
  const rootsPem = () => ca!.certPem;

  const issueServerCert = async (): Promise<void> => {
    const keys = await generateKeyPair();
    const { certPem, identity } = await issueCertificate(ca!, { role: 'manager', name: `manager-${nameKey(hostname()).replace(/[^a-z0-9-]/g, '-')}`.slice(0, 63), publicKey: keys.publicKey, now: now(), ttlMs: MANAGER_TTL_MS, serverName: MANAGER_SERVER_NAME });
    deps.certs.set(`${certPem.trim()}\n${ca!.certPem.trim()}\n`, await exportKeyPem(keys.privateKey), rootsPem());
    // Renewed at half its life (checked daily: timers cannot span 90 days).
    clearTimeout(renewTimer);
    const due = identity.notBefore.getTime() + (identity.notAfter.getTime() - identity.notBefore.getTime()) / 2;
    renewTimer = setTimeout(() => void issueServerCert().catch((err: unknown) => log.error('renewing the manager certificate failed', { error: String(err) })), Math.min(Math.max(0, due - clock.now()), 86_400_000));
    renewTimer.unref();
  };

  const watchIssued = async (): Promise<void> => {
    const listed = await pki.listIssued();
    issued = new Map([...listed.issued].map(([k, v]) => [k, new Set(v)]));
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
        // A broken watch would leave revocations unseen: list and watch again.
        log.warn('watch of issued certificates failed; reloading', { error: String(err) });
        void watch?.cancel().catch(() => undefined);
        const retry = (): void => {
          if (closed) return;
          watchIssued().catch(() => setTimeout(retry, 1000).unref());
        };
        retry();
      },
    );
  };

  const ensureAdminCredential = async (): Promise<void> => {
    const dir = join(deps.dataDir, 'admin');
    if (await credentialExists(dir)) return; // revoked or not, an operator's choice stands
    const { keyPem, csrPem } = await createCsr('admin');
    const { certPem } = await authority.issueAdmin('admin', csrPem);
    await writeCredential(dir, { caPem: rootsPem(), certPem, keyPem });
    log.info('wrote the admin credential', { dir });
  };

  const issue = async (role: 'node' | 'admin', name: string, csrPem: string, ttlMs: number, keep: number) => {
    const csr = await parseCsr(csrPem);
    if (nameKey(csr.name) !== nameKey(name)) throw invalidArgument(`the certificate signing request is for "${csr.name}", not "${name}"; make it for the name you ask for`);
    const { certPem, identity } = await issueCertificate(ca!, { role, name, publicKey: csr.publicKey, now: now(), ttlMs });
    await pki.recordIssued(role, identity.name, identity.serial, keep);
    issued.set(`${role}/${identity.name}`, new Set([...(keep > 1 ? issued.get(`${role}/${identity.name}`) ?? [] : []), identity.serial]));
    return { certPem, caPem: rootsPem() };
  };

  const requireReady = (): void => {
    if (!ca) throw unavailable('the manager has not loaded the cluster CA from etcd yet; retry in a moment');
  };

  const authority: Authority = {
    get ready() {
      return ca !== undefined && deps.certs.ready;
    },

    async load() {
      if (ca) return;
      let stored = await pki.get();
      if (!stored) {
        const candidate = await createRootCa(`ctnet-${createHash('sha256').update(String(clock.now()) + Math.random()).digest('hex').slice(0, 12)}`, now());
        stored = await pki.init({ ca: candidate, joinSecret: newJoinSecret() });
        if (stored.ca.certPem === candidate.certPem) log.info('created the cluster CA', { digest: caDigest(candidate.certPem) });
      }
      ca = stored.ca;
      joinSecret = stored.joinSecret;
      roots = [new X509Certificate(ca.certPem)];
      await watchIssued();
      await issueServerCert();
      await ensureAdminCredential();
    },

    identify(peer, allowed) {
      if (!peer) throw unauthenticated(`no valid client certificate of this cluster was presented (none, expired, self-signed, or another cluster's); ${HINT}`);
      requireReady();
      const fp = createHash('sha256').update(peer).digest('hex');
      let v = verified.get(fp);
      if (!v) {
        v = verifyPeer(new X509Certificate(peer), roots, now());
        if (verified.size > 10_000) verified.clear();
        if (!('problem' in v)) verified.set(fp, v);
      } else if (!('problem' in v) && v.notAfter.getTime() < clock.now()) {
        v = { problem: `its certificate expired at ${v.notAfter.toISOString()}` };
      }
      if ('problem' in v) throw unauthenticated(`the client certificate was refused: ${v.problem}; ${HINT}`);
      if (v.role !== 'manager' && !issued.get(`${v.role}/${v.name}`)?.has(v.serial)) {
        throw unauthenticated(
          v.role === 'node'
            ? `the certificate of node ${v.name} was revoked (the node was removed); join again with a token: ctagent run --join-token TOKEN`
            : `the admin certificate "${v.name}" was revoked (ctmgr admin-cert rm); get a new one from another admin: ctmgr admin-cert --name NAME --out DIR`,
        );
      }
      if (!allowed.includes(v.role)) {
        throw permissionDenied(v.role === 'node' ? `a node certificate (${v.name}) cannot call the admin API; use an admin credential (ctmgr --tls-dir DIR)` : `an ${v.role} certificate (${v.name}) cannot do this; it needs a ${allowed.join(' or ')} certificate`);
      }
      return v;
    },

    async join(secret, csrPem, isReady) {
      requireReady();
      if (!joinSecret || !secretMatches(secret, hashSecret(joinSecret))) {
        throw unauthenticated('the join token is not valid for this cluster (wrong, or rotated): print the current one on a manager with "ctmgr join-token worker"');
      }
      const { name } = await parseCsr(csrPem);
      parseName(name, 'node');
      if (isReady(name)) throw alreadyExists(`node ${name} is ready with another certificate; give this host another --node-name, or remove that node first (ctmgr node rm ${name})`);
      return issue('node', name, csrPem, deps.nodeCertTtlMs, 1);
    },

    async renew(caller, csrPem) {
      requireReady();
      return issue('node', caller.name, csrPem, deps.nodeCertTtlMs, 2);
    },

    async joinToken(rotate) {
      requireReady();
      if (rotate || !joinSecret) {
        const secret = newJoinSecret();
        await pki.setJoinSecret(secret);
        joinSecret = secret;
        log.info('rotated the worker join token');
      }
      return formatJoinToken({ caDigest: caDigest(ca!.certPem), secret: joinSecret });
    },

    async issueAdmin(name, csrPem) {
      requireReady();
      return issue('admin', parseName(name, 'admin'), csrPem, ADMIN_TTL_MS, ADMIN_KEEP);
    },

    async revokeAdmin(name) {
      requireReady();
      const n = await pki.revoke('admin', parseName(name, 'admin'));
      issued.delete(`admin/${nameKey(name)}`);
      return n;
    },

    async close() {
      closed = true;
      clearTimeout(renewTimer);
      await watch?.cancel().catch(() => undefined);
    },
  };
  return authority;
}
