import { createRootCa } from '@ctnet/pki';
import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { freePort, startEtcdProcess, type EtcdProcess } from '@ctnet/store';
import { apiClient, connectAgent, httpGet, startManagerProcess, tempDir, waitUntil, type ManagerProcess } from './harness.js';

// etcd missing at start, and etcd lost in the middle of requests.
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function etcdAt(dir: string, clientPort: number, peerPort: number): Promise<EtcdProcess> {
  const proc = await startEtcdProcess({ dataDir: join(dir, 'etcd'), clientPort, peerPort });
  return proc;
}

describe('etcd failures', () => {
  it('starts without etcd, says so, answers UNAVAILABLE, and recovers when etcd appears', async () => {
    const dir = await tempDir('ctnet-etcdfail-');
    cleanups.push(dir.remove);
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const mgr: ManagerProcess = await startManagerProcess({ etcd: `127.0.0.1:${clientPort}`, waitHealthy: false });
    cleanups.push(() => mgr.stop());
    await waitUntil(() => /waiting for etcd at http:\/\/127\.0\.0\.1:\d+; retrying/.test(mgr.output()), 15_000, () => mgr.output());
    expect((await httpGet(`http://${mgr.httpAddr}/healthz`)).status).toBe(503);
    // The cluster's CA lives in etcd: until it is loaded no TLS handshake completes, so every
    // call fails UNAVAILABLE (whatever the credential) and no admin credential exists yet.
    const { certPem: caPem } = await createRootCa('elsewhere', new Date());
    const early = apiClient(mgr, { caPem });
    const err = await early.createNetwork({ name: 'early' }).catch((e: { code: number; details: string }) => e);
    expect(err).toMatchObject({ code: 14 });
    early.close();
    expect((await httpGet(`http://${mgr.httpAddr}/healthz`)).body).toMatch(/etcd/);

    const etcd = await etcdAt(dir.path, clientPort, peerPort);
    cleanups.push(() => etcd.stop());
    await waitUntil(async () => (await httpGet(`http://${mgr.httpAddr}/healthz`)).status === 200, 30_000, () => mgr.output());
    const api = apiClient(mgr);
    expect((await api.createNetwork({ name: 'late', subnet: '10.77.0.0/24' })).name).toBe('late');
    api.close();
    // the manager process survived the whole outage: no crash loop
    expect(mgr.output()).not.toMatch(/ctmgr serve: /);
  });

  it('fails requests with UNAVAILABLE while etcd is down and leaves nothing half-written', async () => {
    const dir = await tempDir('ctnet-etcdlost-');
    cleanups.push(dir.remove);
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    let etcd = await etcdAt(dir.path, clientPort, peerPort);
    cleanups.push(() => etcd.stop());
    const mgr = await startManagerProcess({ etcd: `127.0.0.1:${clientPort}` });
    cleanups.push(() => mgr.stop());
    const api = apiClient(mgr);
    const agent = connectAgent(mgr, { name: 'h1', addr: '192.168.80.1' });
    await waitUntil(async () => (await api.listNodes({})).nodes.length === 1, 10_000);
    await api.createNetwork({ name: 'n', subnet: '10.78.0.0/20' });

    // Fire creates continuously and kill etcd under them.
    const results: { name: string; ok: boolean; code?: number }[] = [];
    let stop = false;
    const firing = Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const name = `w${w}-${i}`;
          await api.createEndpoint({ network: 'n', node: 'h1', name }).then(
            () => results.push({ name, ok: true }),
            (e: { code: number }) => results.push({ name, ok: false, code: e.code }),
          );
        }
      }),
    );
    await waitUntil(() => results.length > 50, 20_000);
    await etcd.stop(); // SIGTERM; in-flight transactions either committed or did not
    // regression: /healthz stayed 200 after etcd went away (the view had loaded once)
    await waitUntil(async () => (await httpGet(`http://${mgr.httpAddr}/healthz`)).status === 503, 30_000);
    expect((await httpGet(`http://${mgr.httpAddr}/healthz`)).body).toMatch(/etcd at .* is unreachable/);
    await waitUntil(() => results.filter((r) => !r.ok).length >= 8, 30_000);
    stop = true;
    await firing;
    const failures = results.filter((r) => !r.ok);
    expect(new Set(failures.map((f) => f.code))).toEqual(new Set([14]));

    etcd = await etcdAt(dir.path, clientPort, peerPort);
    await waitUntil(async () => (await httpGet(`http://${mgr.httpAddr}/healthz`)).status === 200, 30_000);
    await waitUntil(() => api.inspectNetwork({ nameOrId: 'n' }).then(() => true, () => false), 30_000);
    const detail = await api.inspectNetwork({ nameOrId: 'n' });
    const stored = new Set(detail.endpoints.map((e) => e.name));
    // every success is stored; every stored endpoint has exactly one claim (usage == endpoints)
    for (const r of results.filter((x) => x.ok)) expect(stored.has(r.name)).toBe(true);
    expect(detail.usage?.allocated).toBe(detail.endpoints.length);
    expect(new Set(detail.endpoints.map((e) => e.ip)).size).toBe(detail.endpoints.length);
    agent.close();
    api.close();
  });
});
