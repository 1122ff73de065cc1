import { X509Certificate } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { CtnetError, ErrorCode, formatHostPort, unauthenticated, type AgentConfig, type HostPort, type Logger } from '@ctnet/core';
import { caDigest, createCsr, credentialExists, parseJoinToken, readCredential, readIdentity, splitPem, verifyPeer, writeCredential, type Credential, type JoinToken } from '@ctnet/pki';
import { AgentServiceClient, clientCredentials, clientOptions, fromServiceError, type CaBundle, type NodeCertificate } from '@ctnet/proto';

/**
 * This host's identity in the cluster: a node certificate and key in <data-dir>/tls, got by
 * joining with a token once and renewed over the manager connection at half its life.
 * Restarts need no token; a token given again rejoins only when the stored credential
 * cannot serve (another cluster's, expired, or revoked).
 */
export interface NodeTls {
  /** The credential for new connections to a manager. */
  current(): Credential;
  /** Renews now (the manager says the CA rotated), whatever the certificate's age. */
  renewNow(): void;
  /** True when the certificate is past its end here: nothing but a new join can help. */
  expired(): boolean;
  /**
   * The manager refused the credential (revoked by "ctmgr node rm", or expired): it is moved
   * aside, so the next start joins anew, and only with a token. A removed node never comes
   * back on its own.
   */
  refused(why: string): Promise<void>;
  stop(): void;
}

export const tlsDir = (dataDir: string): string => join(dataDir, 'tls');
const JOIN_TIMEOUT_MS = 10_000;
const NO_TOKEN = 'this host has not joined the cluster; run "ctagent run --join-token TOKEN ..." with a token printed on a manager by "ctmgr join-token worker"';

/**
 * Asks the manager for the roots the cluster trusts, over TLS it cannot verify yet, and keeps
 * them only if one has the digest the token names; from then on the manager is verified
 * against them. Nothing is sent but the request, so a wrong manager learns nothing.
 */
export async function fetchClusterCa(addr: HostPort, digest: string, timeoutMs = JOIN_TIMEOUT_MS): Promise<string> {
  const unverified = credentials.createSsl(null, null, null, { rejectUnauthorized: false });
  const client = new AgentServiceClient(formatHostPort(addr), unverified, clientOptions());
  try {
    const bundle = await unaryCall<CaBundle>((cb) => client.getCaBundle({}, new Metadata(), { deadline: Date.now() + timeoutMs }, cb));
    const roots = splitPem(bundle.caPem);
    if (!roots.some((r) => caDigest(r) === digest)) {
      throw unauthenticated(`the manager at ${formatHostPort(addr)} does not hold the CA this join token names (wrong cluster, or something in between); nothing else was sent to it. Check the token with "ctmgr join-token worker" on the right manager`);
    }
    return `${roots.map((r) => r.trim()).join('\n')}\n`;
  } finally {
    client.close();
  }
}

function unaryCall<T>(start: (cb: (err: ServiceError | null, res: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((err, res) => (err ? reject(fromServiceError(err)) : resolve(res))));
}

/** Joins through the first manager that answers; returns the stored credential. */
export async function joinCluster(config: AgentConfig, token: JoinToken, log: Logger): Promise<Credential> {
  let last: unknown;
  for (const m of config.managers) {
    const addr = formatHostPort(m);
    try {
      const caPem = await fetchClusterCa(m, token.caDigest);
      const { keyPem, csrPem } = await createCsr(config.nodeName);
      const client = new AgentServiceClient(addr, clientCredentials({ caPem }), clientOptions());
      try {
        const res = await unaryCall<NodeCertificate>((cb) => client.join({ secret: token.secret, csrPem }, new Metadata(), { deadline: Date.now() + JOIN_TIMEOUT_MS }, cb));
        const cred = checkIssued(res, config.nodeName, keyPem);
        await writeCredential(tlsDir(config.dataDir), cred);
        log.info('joined the cluster', { manager: addr, node: config.nodeName, expires: readIdentity(cred.certPem).notAfter.toISOString() });
        return cred;
      } finally {
        client.close();
      }
    } catch (err) {
      const e = CtnetError.from(err);
      if (e.code !== ErrorCode.Unavailable && e.code !== ErrorCode.DeadlineExceeded) throw e; // a refusal: the next manager says the same
      last = e;
    }
  }
  throw last ?? new CtnetError(ErrorCode.Unavailable, 'no manager given');
}

function checkIssued(res: NodeCertificate, nodeName: string, keyPem: string): Credential {
  const id = readIdentity(res.certPem);
  if (id.role !== 'node' || id.name !== nodeName) throw new CtnetError(ErrorCode.Internal, `the manager issued a certificate for ${id.role} ${id.name}, not node ${nodeName}`);
  return { caPem: res.caPem, certPem: res.certPem, keyPem };
}

/** Usable now: signed by a root it ships with and valid (the check the manager makes, pki's verifyPeer). */
function usable(cred: Credential, now: number): string | undefined {
  try {
    const v = verifyPeer(new X509Certificate(cred.certPem), splitPem(cred.caPem).map((r) => new X509Certificate(r)), new Date(now));
    return 'problem' in v ? `the node certificate: ${v.problem}` : undefined;
  } catch (err) {
    return `the stored credential is unreadable (${(err as Error).message})`;
  }
}

/**
 * Loads this host's credential, joining first when there is none (or it cannot serve and a
 * token is given). While no manager answers the join, it retries; a refused token fails.
 */
export async function loadNodeTls(config: AgentConfig, joinToken: string | undefined, log: Logger): Promise<NodeTls> {
  const token = joinToken ? parseJoinToken(joinToken) : undefined;
  const dir = tlsDir(config.dataDir);
  let cred: Credential | undefined;
  // A usable credential of this node beside a token of a CA it does not hold: either the host
  // moves to another cluster (the join succeeds) or the token is stale — the cluster's CA
  // rotated since the token was written to the settings — and the join is refused: then the
  // stored credential is what this node is, and it goes on with it.
  let fallback: Credential | undefined;
  if (await credentialExists(dir)) {
    const stored = await readCredential(dir, NO_TOKEN);
    const problem = usable(stored, Date.now());
    const otherCluster = token && !splitPem(stored.caPem).some((r) => caDigest(r) === token.caDigest);
    const mine = !problem && readIdentity(stored.certPem).name === config.nodeName;
    if (mine && !otherCluster) cred = stored;
    else if (mine) fallback = stored;
    else if (!token) throw unauthenticated(`${problem ?? `the stored certificate is for another node name`}; ${NO_TOKEN}`);
  } else if (!token) {
    throw unauthenticated(NO_TOKEN);
  }
  const joinWithRetry = async (): Promise<Credential> => {
    for (let delay = 500; ; delay = Math.min(delay * 2, 5000)) {
      try {
        return await joinCluster(config, token!, log);
      } catch (err) {
        const e = CtnetError.from(err);
        if (e.code !== ErrorCode.Unavailable && e.code !== ErrorCode.DeadlineExceeded) throw e;
        log.warn(`cannot join yet (${e.message}); retrying in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  };
  cred ??= await joinWithRetry().catch((err: unknown) => {
    if (!fallback) throw err;
    log.warn('the join token was refused; going on with the node certificate this host holds (remove CTNET_JOIN_TOKEN from the settings: it is needed for the first join only)', {
      error: err instanceof Error ? err.message : String(err),
    });
    return fallback;
  });

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  // Renew at half of the life left when the credential arrived (or was loaded): notBefore is
  // back-dated for clock skew, so it says nothing about when the certificate was issued.
  let half = 0;
  const received = (): void => {
    const notAfter = readIdentity(cred!.certPem).notAfter.getTime();
    half = Date.now() + (notAfter - Date.now()) / 2;
  };
  received();
  const life = () => ({ half, notAfter: readIdentity(cred!.certPem).notAfter.getTime() });
  // Timers cannot span long lifetimes: wake at least daily and look again.
  const arm = (ms: number): void => {
    clearTimeout(timer);
    // At least a second apart: a certificate that arrives already past half its life (clocks
    // apart by more than the TTL) must not make renewals spin.
    timer = setTimeout(() => void renew(), Math.min(Math.max(1000, ms), 86_400_000));
    timer.unref();
  };
  const schedule = (): void => arm(life().half - Date.now());
  const tryRenew = async (): Promise<boolean> => {
    for (const m of config.managers) {
      const client = new AgentServiceClient(formatHostPort(m), clientCredentials(cred!), clientOptions());
      try {
        const { keyPem, csrPem } = await createCsr(config.nodeName);
        const res = await unaryCall<NodeCertificate>((cb) => client.renew({ csrPem }, new Metadata(), { deadline: Date.now() + JOIN_TIMEOUT_MS }, cb));
        if (stopped) return false; // refused meanwhile: never write a credential back
        cred = checkIssued(res, config.nodeName, keyPem);
        received();
        await writeCredential(dir, cred);
        log.info('renewed the node certificate', { expires: readIdentity(cred.certPem).notAfter.toISOString() });
        return true;
      } catch (err) {
        log.warn('renewing the node certificate failed; trying again soon', { manager: formatHostPort(m), error: CtnetError.from(err).message });
      } finally {
        client.close();
      }
    }
    return false;
  };
  // Renewal rides on a new call beside the agent's stream: the stream keeps its connection.
  let renewing = false;
  const renew = async (now = false): Promise<void> => {
    if (stopped || renewing) return;
    if (!now && Date.now() < life().half) return schedule();
    renewing = true;
    const renewed = await tryRenew().finally(() => (renewing = false));
    if (stopped) return;
    if (renewed) schedule();
    else arm(Math.max(1000, (life().notAfter - Date.now()) / 10)); // a tenth of what is left
  };
  schedule();

  return {
    current: () => cred!,
    renewNow: () => void renew(true),
    expired: () => readIdentity(cred!.certPem).notAfter.getTime() <= Date.now(),
    async refused(why) {
      stopped = true;
      clearTimeout(timer);
      await rename(dir, `${dir}.refused-${Date.now()}`).catch(() => undefined);
      log.error(`the manager refuses this node's certificate (${why}); the credential was moved aside: restart the agent with --join-token TOKEN (ctmgr join-token worker) to join again`);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
