import { afterAll, expect, it } from 'vitest';
import { connect } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { freePort } from '@ctnet/store';
import { apiClient, startManagerProcess, tempDir } from './harness.js';

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

let dir: Awaited<ReturnType<typeof tempDir>>;
afterAll(async () => dir?.remove());

it('runs on its own embedded etcd, keeps state across restarts, and stops etcd with itself', async () => {
  dir = await tempDir('ctnet-embedded-');
  const etcdPort = await freePort();
  const args = [`--data-dir=${dir.path}`, `--embedded-etcd-port=${etcdPort}`];
  let mgr = await startManagerProcess({ args });
  let api = apiClient(mgr);
  await api.createNetwork({ name: 'demo', subnet: '10.90.0.0/24' });
  api.close();
  await mgr.stop();
  expect(await portOpen(etcdPort)).toBe(false);

  mgr = await startManagerProcess({ args });
  api = apiClient(mgr);
  expect((await api.inspectNetwork({ nameOrId: 'demo' })).network?.subnet).toBe('10.90.0.0/24');
  expect(await portOpen(etcdPort)).toBe(true);
  // The embedded etcd serves TLS only, to clients with a certificate from its own CA: a local
  // process (a container on this host, say) reaches the port but not the data, the CA key above all.
  const ca = readFileSync(join(dir.path, 'etcd', 'tls', 'client', 'ca.pem'));
  const attempt = async (opts: ConstructorParameters<typeof Etcd3>[0]) => {
    const c = new Etcd3({ ...opts, dialTimeout: 3000, defaultCallOptions: () => ({ deadline: Date.now() + 3000 }) });
    try {
      return await c.get('/ctnet/v1/pki/ca').string().then((v) => (v ? 'read' : 'empty'), (e: Error) => `refused: ${e.message}`);
    } finally {
      c.close();
    }
  };
  expect(await attempt({ hosts: `http://127.0.0.1:${etcdPort}` })).toMatch(/^refused/);
  expect(await attempt({ hosts: `https://127.0.0.1:${etcdPort}`, credentials: { rootCertificate: ca } })).toMatch(/^refused/);
  const client = join(dir.path, 'etcd', 'tls', 'client');
  expect(await attempt({ hosts: `https://127.0.0.1:${etcdPort}`, credentials: { rootCertificate: ca, certChain: readFileSync(join(client, 'cert.pem')), privateKey: readFileSync(join(client, 'key.pem')) } })).toBe('read');
  api.close();
  await mgr.stop();
  expect(await portOpen(etcdPort)).toBe(false);
});
