import { afterAll, expect, it } from 'vitest';
import { connect } from 'node:net';
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
  api.close();
  await mgr.stop();
  expect(await portOpen(etcdPort)).toBe(false);
});
