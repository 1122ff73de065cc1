/**
 * Credentials for benchmarks, got the way users get them: the admin credential a manager
 * writes to <data-dir>/admin, and node certificates through the worker token and Join.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { createCsr, parseJoinToken, type Credential } from '@ctnet/pki';
import { AgentServiceClient, clientCredentials, clientOptions, ManagerServiceClient, type NodeCertificate } from '@ctnet/proto';

export function adminCredential(dataDir: string): Credential {
  const read = (f: string) => readFileSync(join(dataDir, 'admin', f), 'utf8');
  return { caPem: read('ca.pem'), certPem: read('cert.pem'), keyPem: read('key.pem') };
}

export function adminClient(addr: string, dataDir: string): ManagerServiceClient {
  return new ManagerServiceClient(addr, clientCredentials(adminCredential(dataDir)), clientOptions());
}

export async function joinNode(addr: string, dataDir: string, name: string): Promise<Credential> {
  const admin = adminClient(addr, dataDir);
  const token = await new Promise<string>((resolve, reject) => admin.joinToken({ role: 'worker', rotate: false }, (e, r) => (e ? reject(e) : resolve(r.token))));
  admin.close();
  const { caPem } = adminCredential(dataDir);
  const { keyPem, csrPem } = await createCsr(name);
  const client = new AgentServiceClient(addr, clientCredentials({ caPem }), clientOptions());
  try {
    const res = await new Promise<NodeCertificate>((resolve, reject) =>
      client.join({ secret: parseJoinToken(token).secret, csrPem }, new Metadata(), { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    return { caPem: res.caPem, certPem: res.certPem, keyPem };
  } finally {
    client.close();
  }
}
