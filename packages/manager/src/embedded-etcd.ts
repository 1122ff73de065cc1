import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRootCa, credentialExists, issueServiceCertificate, writeCredential } from '@ctnet/pki';
import { startEtcdProcess, type EtcdProcess } from '@ctnet/store';
import type { Logger } from './deps.js';

/**
 * The embedded default: ctmgr runs a single-member etcd from PATH on loopback ports that
 * do not clash with a stock etcd (23790/23791 rather than 2379/2380), restarts it with
 * backoff if it dies, and stops it on shutdown. It serves TLS only and accepts only clients
 * with a certificate from its own CA (etcd's --client-cert-auth): loopback is no boundary
 * on a host that runs containers. That CA and its certificates are made on first start in
 * <data-dir>/etcd/tls (0600): the cluster CA cannot be used, as it lives in this etcd.
 */
export interface EmbeddedEtcd {
  readonly endpoint: string;
  /** What a client needs: the CA and a client certificate (PEM). */
  readonly tls: { readonly caPem: string; readonly certPem: string; readonly keyPem: string };
  stop(): Promise<void>;
}

const TEN_YEARS_MS = 10 * 365 * 86_400_000;

/** Makes (once) and reads the embedded etcd's CA, server and client certificates. */
async function ensureEtcdTls(dir: string): Promise<{ files: { caFile: string; certFile: string; keyFile: string }; client: EmbeddedEtcd['tls'] }> {
  const server = join(dir, 'server');
  const client = join(dir, 'client');
  if (!(await credentialExists(server)) || !(await credentialExists(client))) {
    const now = new Date();
    const ca = await createRootCa('ctnet-embedded-etcd', now, 'ctnet embedded etcd CA');
    // Both certificates serve both ways: etcd's peer listener checks its own certificate as a client.
    const s = await issueServiceCertificate(ca, { commonName: 'etcd', dnsNames: ['localhost'], ips: ['127.0.0.1'], server: true, client: true, now, ttlMs: TEN_YEARS_MS });
    const c = await issueServiceCertificate(ca, { commonName: 'ctmgr', server: false, client: true, now, ttlMs: TEN_YEARS_MS });
    await writeCredential(server, { caPem: ca.certPem, certPem: s.certPem, keyPem: s.keyPem });
    await writeCredential(client, { caPem: ca.certPem, certPem: c.certPem, keyPem: c.keyPem });
    // The CA key is not kept: nothing else is ever signed for this etcd.
  }
  const read = (d: string, f: string) => readFile(join(d, f), 'utf8');
  return {
    files: { caFile: join(server, 'ca.pem'), certFile: join(server, 'cert.pem'), keyFile: join(server, 'key.pem') },
    client: { caPem: await read(client, 'ca.pem'), certPem: await read(client, 'cert.pem'), keyPem: await read(client, 'key.pem') },
  };
}

export async function startEmbeddedEtcd(dataDir: string, clientPort: number, log: Logger): Promise<EmbeddedEtcd> {
  const etcdDir = join(dataDir, 'etcd');
  const tls = await ensureEtcdTls(join(etcdDir, 'tls'));
  const opts = { dataDir: etcdDir, clientPort, peerPort: clientPort + 1, name: 'ctmgr', tls: tls.files };
  let current: EtcdProcess = await startEtcdProcess(opts);
  let stopping = false;
  log.info('embedded etcd started', { endpoint: current.endpoint, pid: current.pid, dataDir: opts.dataDir });

  const supervise = (proc: EtcdProcess, delay: number): void => {
    void proc.exited.then(async (code) => {
      if (stopping) return;
      log.error(`embedded etcd exited (${code}); restarting in ${delay} ms`, { log: join(opts.dataDir, 'etcd.log') });
      await new Promise((r) => setTimeout(r, delay));
      if (stopping) return;
      try {
        current = await startEtcdProcess(opts);
        log.info('embedded etcd restarted', { pid: current.pid });
        supervise(current, 500);
      } catch (err) {
        log.error('embedded etcd failed to restart', { error: err instanceof Error ? err.message : String(err) });
        supervise(proc, Math.min(delay * 2, 30_000));
      }
    });
  };
  supervise(current, 500);
  return {
    endpoint: current.endpoint,
    tls: tls.client,
    stop: async () => {
      stopping = true;
      await current.stop();
    },
  };
}
