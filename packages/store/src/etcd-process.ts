import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { unavailable } from '@ctnet/core';

/**
 * Starts one single-member etcd on loopback. Used by ctmgr's embedded mode (which supervises
 * it) and by every test and benchmark that needs a real etcd: one way to run etcd, not three.
 */
export interface EtcdProcessOptions {
  readonly dataDir: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly name?: string;
  readonly binary?: string; // default: etcd from PATH
  readonly readyTimeoutMs?: number;
  /**
   * Serve clients and peers over TLS and accept only clients with a certificate signed by
   * caFile (etcd's --client-cert-auth, as its security guide recommends). PEM file paths.
   */
  readonly tls?: { readonly caFile: string; readonly certFile: string; readonly keyFile: string };
}

export interface EtcdProcess {
  readonly endpoint: string;
  readonly pid: number;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  stop(): Promise<void>;
}

/** Operations one transaction may carry on the etcd ctnet runs itself; an external etcd needs the same (README). */
export const MAX_TXN_OPS = 4096;

export async function startEtcdProcess(opts: EtcdProcessOptions): Promise<EtcdProcess> {
  const name = opts.name ?? 'ctnet';
  const scheme = opts.tls ? 'https' : 'http';
  const client = `${scheme}://127.0.0.1:${opts.clientPort}`;
  const peer = `${scheme}://127.0.0.1:${opts.peerPort}`;
  await mkdir(opts.dataDir, { recursive: true });
  const log = await open(join(opts.dataDir, 'etcd.log'), 'a');
  const args = [
    `--name=${name}`,
    `--data-dir=${join(opts.dataDir, 'member-data')}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${name}=${peer}`,
    '--initial-cluster-state=new',
    '--auto-compaction-mode=revision',
    '--auto-compaction-retention=100000',
    // A container publishing LIMITS.ports host ports claims each in its own transaction
    // (up to three comparisons and a write per port); etcd's default allows 128 operations.
    `--max-txn-ops=${MAX_TXN_OPS}`,
    ...(opts.tls
      ? [
          '--client-cert-auth',
          `--trusted-ca-file=${opts.tls.caFile}`,
          `--cert-file=${opts.tls.certFile}`,
          `--key-file=${opts.tls.keyFile}`,
          '--peer-client-cert-auth',
          `--peer-trusted-ca-file=${opts.tls.caFile}`,
          `--peer-cert-file=${opts.tls.certFile}`,
          `--peer-key-file=${opts.tls.keyFile}`,
        ]
      : []),
  ];
  let child: ChildProcess;
  try {
    child = spawn(opts.binary ?? 'etcd', args, { stdio: ['ignore', log.fd, 'pipe'] });
  } catch (err) {
    await log.close();
    throw unavailable(`cannot start etcd: ${String(err)}; install it (apt-get install etcd-server) or pass --etcd-endpoints`, err);
  }
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      void log.close().catch(() => undefined);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  await new Promise<void>((resolve, reject) => {
    let tail = '';
    const timer = setTimeout(() => {
      void stop();
      reject(unavailable(`etcd did not become ready within ${opts.readyTimeoutMs ?? 20000} ms; see ${join(opts.dataDir, 'etcd.log')}`));
    }, opts.readyTimeoutMs ?? 20000);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(unavailable(`cannot start etcd (${err.message}); install it (apt-get install etcd-server) or pass --etcd-endpoints`, err));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(unavailable(`etcd exited with ${code} before it was ready: ${tail.trim().split('\n').slice(-3).join(' | ')}`));
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      void log.write(text).catch(() => undefined);
      tail = (tail + text).slice(-4000);
      if (/ready to serve client requests/.test(tail)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { endpoint: client, pid: child.pid ?? -1, exited, stop };
}

/** A port that was free a moment ago (the kernel picked it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
