import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Etcd3 } from 'etcd3';
import type { Container, Endpoint, Network } from '@ctnet/core';
import { createEtcdStore } from './etcd-store.js';
import { isCompactedError } from './etcd-errors.js';
import { startTestEtcd, type TestEtcd } from './testing/etcd-server.js';
import type { ChangeBatch, Store } from './store.js';

// The store contract, run against the real etcd implementation.
let etcd: TestEtcd;
let store: Store;

beforeAll(async () => {
  etcd = await startTestEtcd();
  store = createEtcdStore({ endpoints: [etcd.endpoint] });
}, 30_000);
afterAll(async () => {
  store?.close();
  await etcd?.stop();
});

const network = (id: string, name: string, subnet = '10.1.0.0/24'): Network => ({
  id, name, driver: 'overlay', vni: 4096, subnet, gateway: subnet.replace(/0\/\d+$/, '1'), ipRange: subnet,
  auxAddresses: {}, attachable: false, internal: false, mtu: 0, parent: '', options: {}, labels: {}, createdAt: 'now',
});
const endpoint = (networkId: string, name: string, ip: string, id = `id-${name}`): Endpoint => ({
  id, networkId, name, node: 'h1', ip, mac: '02:42:0a:01:00:02', aliases: [], createdAt: 'now',
});

describe('etcd store', () => {
  it('creates a network only if the table did not change since the list', async () => {
    const { revision } = await store.listNetworks();
    expect(await store.createNetwork(network('n1', 'one'), revision)).toBe(true);
    // a second writer that listed before n1 was created is refused
    expect(await store.createNetwork(network('n2', 'two'), revision)).toBe(false);
    const again = await store.listNetworks();
    expect(await store.createNetwork(network('n2', 'two', '10.2.0.0/24'), again.revision)).toBe(true);
    expect((await store.listNetworks()).networks.map((n) => n.name).sort()).toEqual(['one', 'two']);
  });

  it('updates a network and a node by read-modify-write, and says when the record is gone', async () => {
    const { revision } = await store.listNetworks();
    expect(await store.createNetwork({ ...network('nb', 'local', '10.9.0.0/16'), driver: 'bridge', gateway: '', hostSubnets: {} }, revision)).toBe(true);
    // two hosts asking for their subnet at once: both land, neither overwrites the other
    const add = (node: string, cidr: string) => store.updateNetwork('nb', (n) => ({ ...n, hostSubnets: { ...n.hostSubnets, [node]: cidr } }));
    await Promise.all([add('h1', '10.9.0.0/24'), add('h2', '10.9.1.0/24')]);
    expect((await store.listNetworks()).networks.find((n) => n.id === 'nb')!.hostSubnets).toEqual({ h1: '10.9.0.0/24', h2: '10.9.1.0/24' });
    expect(await store.updateNetwork('nope', (n) => n)).toBeUndefined();
    await store.putNode({ name: 'hx', addr: '192.168.9.9', hostname: 'hx', labels: {}, routes: [], registeredAt: 'now' });
    expect(await store.updateNode('hx', (n) => ({ ...n, problems: { nb: 'parent eth9 missing' } }))).toBeGreaterThan(0);
    expect((await store.getNode('hx'))!.problems).toEqual({ nb: 'parent eth9 missing' });
    expect(await store.updateNode('gone', (n) => n)).toBeUndefined();
    await store.deleteNode('hx');
    expect(await store.removeNetwork((await store.listNetworks()).networks.find((n) => n.id === 'nb')!)).toEqual({ ok: true });
  });

  it('claims the address and writes the endpoint together, and refuses clashes', async () => {
    const ok = await store.createEndpoint(endpoint('n1', 'a', '10.1.0.2'));
    expect(ok.ok).toBe(true);
    const sameName = await store.createEndpoint(endpoint('n1', 'A', '10.1.0.3', 'other'));
    expect(sameName).toMatchObject({ ok: false, reason: 'name-taken' });
    const sameAddr = await store.createEndpoint(endpoint('n1', 'b', '10.1.0.2'));
    expect(sameAddr).toEqual({ ok: false, reason: 'address-taken', owner: 'a' });
    // a retried create of the same endpoint (same id) counts as success
    expect((await store.createEndpoint(endpoint('n1', 'a', '10.1.0.2'))).ok).toBe(true);
    const gone = await store.createEndpoint(endpoint('nope', 'c', '10.9.0.2'));
    expect(gone).toEqual({ ok: false, reason: 'network-gone' });
    const { claims } = await store.listClaims('n1');
    expect(claims.map((c) => [c.ip, c.owner])).toEqual([['10.1.0.2', 'a']]);
  });

  it('deletes the endpoint and releases its address in one step', async () => {
    expect((await store.deleteEndpoint('n1', 'a'))?.ip).toBe('10.1.0.2');
    expect(await store.deleteEndpoint('n1', 'a')).toBeUndefined();
    expect((await store.listClaims('n1')).claims).toEqual([]);
    expect(await store.listEndpoints('n1')).toEqual([]);
  });

  it('refuses to remove a network with endpoints, naming them, and removes an empty one', async () => {
    await store.createEndpoint(endpoint('n2', 'web', '10.2.0.2'));
    const nets = (await store.listNetworks()).networks;
    const two = nets.find((n) => n.id === 'n2')!;
    const refused = await store.removeNetwork(two);
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.endpoints.map((e) => e.name)).toEqual(['web']);
    // the lock was released: endpoints can still be created
    expect((await store.createEndpoint(endpoint('n2', 'db', '10.2.0.3'))).ok).toBe(true);
    await store.deleteEndpoint('n2', 'web');
    await store.deleteEndpoint('n2', 'db');
    expect(await store.removeNetwork(two)).toEqual({ ok: true });
    expect((await store.listNetworks()).networks.map((n) => n.id)).toEqual(['n1']);
  });

  it('connects a further endpoint only while its container exists, and removes it with the container', async () => {
    const ctr = { id: 'cid-1', name: 'box', node: 'h1', cmd: ['x'], env: {}, hostname: 'box', dns: [], dnsSearch: [], createdAt: '', mode: 'network' as const, sharedWith: '', attachPid: 0 };
    expect((await store.createEndpoint({ ...endpoint('n1', 'box', '10.1.0.50'), container: 'cid-1' }, ctr)).ok).toBe(true);
    expect((await store.createEndpoint({ ...endpoint('n1', 'box', '10.1.0.51'), networkId: 'n1', name: 'box2', container: 'cid-1' }, undefined, ctr)).ok).toBe(true);
    const removed = await store.deleteContainer('box');
    expect(removed?.endpoints.map((e) => e.ip).sort()).toEqual(['10.1.0.50', '10.1.0.51']);
    const late = await store.createEndpoint({ ...endpoint('n1', 'box3', '10.1.0.52'), container: 'cid-1' }, undefined, ctr);
    expect(late).toEqual({ ok: false, reason: 'container-gone' });
    expect((await store.listClaims('n1')).claims.map((c) => c.ip)).not.toContain('10.1.0.52');
  });

  it('refuses a second concurrent removal, and takes over a lock left by a remover that died', async () => {
    const { revision } = await store.listNetworks();
    const n = network('n9', 'nine', '10.9.0.0/24');
    expect(await store.createNetwork(n, revision)).toBe(true);
    const raw = new Etcd3({ hosts: etcd.endpoint });
    await raw.put('/ctnet/v1/locks/networks/n9').value(`removing-${Date.now()}-x`);
    await expect(store.removeNetwork(n)).rejects.toMatchObject({ code: 'ABORTED' });
    await raw.put('/ctnet/v1/locks/networks/n9').value(`removing-${Date.now() - 120_000}-x`);
    expect(await store.removeNetwork(n)).toEqual({ ok: true });
    expect(await raw.get('/ctnet/v1/locks/networks/n9').string()).toBeNull();
    raw.close();
  });

  it('watches from a revision with no gap and groups a transaction into one batch', async () => {
    const snap = await store.snapshot();
    const batches: ChangeBatch[] = [];
    const w = await store.watch('state', snap.revision, (b) => batches.push(b), () => undefined);
    await store.createEndpoint(endpoint('n1', 'w1', '10.1.0.10'));
    await store.deleteEndpoint('n1', 'w1');
    await waitFor(() => batches.length >= 2);
    await w.cancel();
    expect(batches[0]!.changes).toEqual([expect.objectContaining({ kind: 'endpoint', id: 'n1/w1' })]);
    expect(batches[1]!.changes).toEqual([{ kind: 'endpoint', id: 'n1/w1' }]);
    expect(batches[1]!.revision).toBeGreaterThan(batches[0]!.revision);
    expect(batches[0]!.revision).toBeGreaterThan(snap.revision);
  });

  it('replays changes made before the watch started when resuming from an old revision', async () => {
    const from = (await store.snapshot()).revision;
    await store.createEndpoint(endpoint('n1', 'r1', '10.1.0.20'));
    await store.createEndpoint(endpoint('n1', 'r2', '10.1.0.21'));
    const seen: string[] = [];
    const w = await store.watch('state', from, (b) => b.changes.forEach((c) => seen.push(c.kind === 'endpoint' ? c.id : '')), () => undefined);
    await waitFor(() => seen.length >= 2);
    await w.cancel();
    expect(seen).toEqual(['n1/r1', 'n1/r2']);
  });

  it('reports a compacted start revision so the caller can take a snapshot', async () => {
    const old = (await store.snapshot()).revision;
    const raw = new Etcd3({ hosts: etcd.endpoint });
    for (let i = 0; i < 3; i++) await raw.put('/ctnet/v1/state/nodes/compaction-probe').value(`{"n":${i}}`);
    const now = (await store.snapshot()).revision;
    await raw.kv.compact({ revision: String(now), physical: true });
    raw.close();
    // etcd may accept the watch and cancel it right after: the error then arrives on onError
    const err = await new Promise<unknown>((resolve) => {
      store.watch('state', old - 1, () => resolve('delivered events'), resolve).then(
        (w) => setTimeout(() => void w.cancel(), 3000),
        resolve,
      );
    });
    expect(isCompactedError(err)).toBe(true);
  });

  it('regression: cancelling a watch etcd already cancelled neither hangs nor breaks later watches', async () => {
    const old = (await store.snapshot()).revision;
    const raw = new Etcd3({ hosts: etcd.endpoint });
    for (let i = 0; i < 3; i++) await raw.put('/ctnet/v1/state/nodes/compaction-probe').value(`{"n":${i}}`);
    const now = (await store.snapshot()).revision;
    await raw.kv.compact({ revision: String(now), physical: true });
    let gone: unknown;
    const w = await store.watch('state', old - 1, () => undefined, (e) => (gone = e)).catch((e: unknown) => ((gone = e), undefined));
    const deadline = Date.now() + 5000;
    while (gone === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(isCompactedError(gone)).toBe(true);
    const t0 = Date.now();
    await w?.cancel();
    expect(Date.now() - t0).toBeLessThan(1000);
    const seen: number[] = [];
    const w2 = await store.watch('state', now, (b) => seen.push(b.revision), () => undefined);
    await raw.put('/ctnet/v1/state/nodes/compaction-probe').value('{"n":9}');
    await waitFor(() => seen.length > 0);
    await w2.cancel();
    raw.close();
  });

  it('keeps a node ready while its lease lives', async () => {
    const live = await store.keepNodeAlive('h9', 2);
    expect((await store.listAlive()).has('h9')).toBe(true);
    live.release();
    await waitFor(async () => !(await store.listAlive()).has('h9'), 8000);
  });

  it('fails with UNAVAILABLE, naming etcd, when etcd is not there', async () => {
    const dead = createEtcdStore({ endpoints: ['http://127.0.0.1:1'], callTimeoutMs: 500 });
    const err = await dead.listNetworks().catch((e: unknown) => e);
    dead.close();
    expect(err).toMatchObject({ code: 'UNAVAILABLE' });
    expect(String((err as Error).message)).toMatch(/etcd.*127\.0\.0\.1:1/);
  });

  it('regression: host ports were guarded by the cache only; a claim key per port lets exactly one of racing containers publish it', async () => {
    const { revision } = await store.listNetworks();
    await store.createNetwork(network('np', 'ports', '10.5.0.0/24'), revision);
    const ct = (name: string, hostIp: string, node = 'h1'): Container => ({
      id: `id-${name}`, name, node, cmd: ['true'], env: {}, hostname: name, dns: [], dnsSearch: [], createdAt: 'now', mode: 'network', sharedWith: '', attachPid: 0,
      ports: [{ protocol: 'tcp', hostIp, hostPort: 8080, containerPort: 80 }],
    });
    const tries = ['', '192.168.1.1', '', '192.168.1.1', '192.168.1.2'].map((ip, i) =>
      store.createEndpoint({ ...endpoint('np', `p${i}`, `10.5.0.${10 + i}`), container: `id-p${i}` }, ct(`p${i}`, ip)),
    );
    const outcomes = await Promise.all(tries);
    const won = outcomes.filter((o) => o.ok);
    // either the wildcard won alone, or the specific addresses (.1 and .2) did
    expect(won.length === 1 || won.length === 2).toBe(true);
    for (const o of outcomes) if (!o.ok) expect(o).toMatchObject({ reason: 'port-taken', holder: expect.stringMatching(/^container p\d on node h1$/) });
    // nothing of a loser is left: its address is free again
    const claims = (await store.listClaims('np')).claims.map((c) => c.owner).sort();
    expect(claims.length).toBe(won.length);
    // the same port on another node is free; removing the holders frees the port
    expect((await store.createEndpoint({ ...endpoint('np', 'other', '10.5.0.30'), node: 'h2', container: 'id-other' }, ct('other', '', 'h2'))).ok).toBe(true);
    for (const c of await store.listContainers()) if (c.ports) await store.deleteContainer(c.name);
    expect((await store.createEndpoint({ ...endpoint('np', 'after', '10.5.0.31'), container: 'id-after' }, ct('after', ''))).ok).toBe(true);
    await store.deleteContainer('after');
  });

  it('regression: a service and an endpoint could share a name on a network; the name keys refuse either, and a removal frees it', async () => {
    const svc = (name: string, networks = ['np']) => ({
      id: `svc-${name}`, name, networks, replicas: 0, endpointMode: 'dnsrr' as const, constraints: [], cmd: ['true'], env: {}, createdAt: 'now', updatedAt: 'now',
    });
    expect((await store.createService(svc('web'))).ok).toBe(true);
    expect(await store.createEndpoint({ ...endpoint('np', 'c1', '10.5.0.40'), aliases: ['web'] })).toMatchObject({ ok: false, reason: 'service-name', name: 'web', service: 'web' });
    expect((await store.createEndpoint({ ...endpoint('np', 'c2', '10.5.0.41'), aliases: ['api'] })).ok).toBe(true);
    expect(await store.createService(svc('api'))).toMatchObject({ ok: false, reason: 'name-taken', network: 'np', holder: 'c2' });
    expect(await store.createService({ ...svc('ing'), publish: [{ protocol: 'udp', published: 9999, target: 53, mode: 'ingress' }] })).toMatchObject({ ok: true });
    expect(await store.createService({ ...svc('ing2'), publish: [{ protocol: 'udp', published: 9999, target: 53, mode: 'host' }] })).toMatchObject({ ok: false, reason: 'port-taken' });
    await store.deleteService('web');
    await store.deleteService('ing');
    expect((await store.createEndpoint({ ...endpoint('np', 'c1', '10.5.0.40'), aliases: ['web'] })).ok).toBe(true);
    expect((await store.createService({ ...svc('ing2'), publish: [{ protocol: 'udp', published: 9999, target: 53, mode: 'host' }] })).ok).toBe(true);
    await store.deleteEndpoint('np', 'c1');
    await store.deleteEndpoint('np', 'c2');
    expect((await store.createService(svc('api'))).ok).toBe(true); // c2's alias went with it
  });

  it('updates a Docker endpoint\'s aliases and ports with their claims: clashes refused naming the holder, removal frees them', async () => {
    const { revision } = await store.listNetworks();
    await store.createNetwork(network('nd', 'dock', '10.6.0.0/24'), revision);
    expect((await store.createEndpoint({ ...endpoint('nd', 'dk-1', '10.6.0.2'), origin: 'docker' })).ok).toBe(true);
    expect((await store.createEndpoint({ ...endpoint('nd', 'dk-2', '10.6.0.3'), origin: 'docker' })).ok).toBe(true);
    const web = await store.updateEndpoint('nd', 'dk-1', { aliases: ['web1', 'www'] });
    expect(web).toMatchObject({ aliases: ['web1', 'www'], ip: '10.6.0.2' });
    // Same alias on two endpoints is fine (as --network-alias in Docker); a service's name is not.
    expect(await store.updateEndpoint('nd', 'dk-2', { aliases: ['www'] })).toMatchObject({ aliases: ['www'] });
    expect(await store.createService({ id: 's-dkapi', name: 'dkapi', networks: ['nd'], replicas: 0, endpointMode: 'dnsrr', constraints: [], cmd: ['true'], env: {}, createdAt: 'now', updatedAt: 'now' })).toMatchObject({ ok: true });
    expect(await store.updateEndpoint('nd', 'dk-2', { aliases: ['dkapi'] })).toEqual({ clash: 'dkapi' });
    // Ports: one holder per host port and node.
    const p8080 = { protocol: 'tcp' as const, hostIp: '', hostPort: 8080, containerPort: 80 };
    expect(await store.updateEndpoint('nd', 'dk-1', { ports: [p8080] })).toMatchObject({ ports: [p8080], aliases: ['web1', 'www'] });
    expect(await store.updateEndpoint('nd', 'dk-2', { ports: [p8080] })).toMatchObject({ portTaken: expect.stringContaining('/ports/tcp/8080/h1/'), holder: 'container web1 on node h1' });
    // Setting the same ports again, or aliases alone, keeps the claim.
    expect(await store.updateEndpoint('nd', 'dk-1', { ports: [p8080] })).toMatchObject({ ports: [p8080] });
    expect(await store.updateEndpoint('nd', 'dk-1', { aliases: ['web1'] })).toMatchObject({ ports: [p8080] });
    expect(await store.updateEndpoint('nd', 'dk-2', { ports: [p8080] })).toMatchObject({ portTaken: expect.any(String) });
    // Cleared, or the endpoint removed: the port is free again.
    await store.updateEndpoint('nd', 'dk-1', { ports: [] });
    expect(await store.updateEndpoint('nd', 'dk-2', { ports: [p8080] })).toMatchObject({ ports: [p8080] });
    await store.deleteEndpoint('nd', 'dk-2');
    expect(await store.updateEndpoint('nd', 'dk-1', { ports: [p8080] })).toMatchObject({ ports: [p8080] });
    expect(await store.updateEndpoint('nd', 'nobody', { aliases: [] })).toBeUndefined();
    await store.deleteEndpoint('nd', 'dk-1');
    await store.deleteService('dkapi');
  });

  it('certificates: one CA for racing managers, first certificate create-only, renewals only while honoured, node removal revokes', async () => {
    const ca = (n: string) => ({ ca: { certPem: `cert-${n}`, keyPem: `key-${n}` }, joinSecret: `secret-${n}` });
    const [a, b] = await Promise.all([store.pki.init(ca('a')), store.pki.init(ca('b'))]);
    expect(a).toEqual(b); // exactly one candidate was stored
    expect(await store.pki.getJoinSecret()).toBe(a.joinSecret);
    const first = await Promise.all([store.pki.recordFirst('node', 'P1', 's1'), store.pki.recordFirst('node', 'p1', 's2')]);
    expect(first.filter(Boolean)).toHaveLength(1); // names are case-insensitive, one wins
    const honoured = (await store.pki.getIssued('node', 'p1'))![0]!;
    expect(await store.pki.recordRenewal('node', 'p1', honoured, 's3', 2)).toBe(true);
    expect(await store.pki.getIssued('node', 'p1')).toEqual([honoured, 's3']);
    expect(await store.pki.recordRenewal('node', 'p1', 'not-honoured', 's4', 2)).toBe(false);
    await store.putNode({ name: 'p1', addr: '10.9.0.1', hostname: 'p1', labels: {}, routes: [], registeredAt: 'now' });
    expect(await store.deleteNode('p1')).toBe(true);
    expect(await store.pki.getIssued('node', 'p1')).toBeUndefined();
    // a renewal racing the removal does not bring the node back
    expect(await store.pki.recordRenewal('node', 'p1', 's3', 's5', 2)).toBe(false);
    expect(await store.pki.getIssued('node', 'p1')).toBeUndefined();
  });

  it('regression: a prefix larger than one etcd response broke every listing; reads page through it', async () => {
    const big = 'z'.repeat(60_000);
    const many = Array.from({ length: 90 }, (_, i): Container => ({
      id: `big-${i}`, name: `big${i}`, node: 'h1', cmd: ['true'], env: { BIG: big }, hostname: 'b', dns: [], dnsSearch: [], createdAt: 'now', mode: 'none', sharedWith: '', attachPid: 0,
    }));
    for (const c of many) expect((await store.createContainer(c)).ok).toBe(true); // ≈5.4 MB, above gRPC's 4 MiB default
    expect((await store.listContainers()).filter((c) => c.id.startsWith('big-'))).toHaveLength(90);
    expect((await store.loadAll()).changes.filter((c) => c.kind === 'container').length).toBeGreaterThanOrEqual(90);
    for (const c of many) await store.deleteContainer(c.name);
  }, 60_000);
});

async function waitFor(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
