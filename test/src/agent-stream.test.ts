import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Etcd3 } from 'etcd3';
import { startTestEtcd, type TestEtcd } from '@ctnet/store';
import type { ManagerMessage } from '@ctnet/proto';
import { apiClient, connectAgent, lastRevision, startManagerProcess, waitUntil, type ManagerProcess } from './harness.js';

// The agent stream against a real manager: snapshot, changes, resume, compaction, liveness.
let etcd: TestEtcd;
let mgr: ManagerProcess;
let api: ReturnType<typeof apiClient>;

beforeAll(async () => {
  etcd = await startTestEtcd();
  mgr = await startManagerProcess({ etcd: etcd.endpoint, args: ['--node-ttl=2s', '--node-grace=3s'] });
  api = apiClient(mgr);
  await api.createNetwork({ name: 'net1', subnet: '10.50.0.0/24' });
});
afterAll(async () => {
  api?.close();
  await mgr?.stop();
  await etcd?.stop();
});

const changesOf = (msgs: ManagerMessage[]) =>
  msgs.flatMap((m) =>
    m.msg?.$case === 'changes' ? m.msg.value.events.map((e) => `${e.deleted ? '-' : '+'}${e.object?.$case ?? 'endpoint'}:${e.id.split('/').pop()}`) : [],
  );

describe('agent stream', () => {
  it('sends a snapshot that includes the node itself, then each change, and shows lag until acked', async () => {
    const a = connectAgent(mgr, { name: 'h1', addr: '192.168.70.1' });
    await waitUntil(() => a.messages.length >= 1, 10_000);
    const snap = a.messages[0]!.msg;
    expect(snap?.$case).toBe('snapshot');
    if (snap?.$case !== 'snapshot') return;
    expect(snap.value.networks.map((n) => n.name).sort()).toEqual(['bridge', 'net1']); // with the default bridge
    expect(snap.value.nodes.map((n) => n.name)).toEqual(['h1']);
    expect(snap.value.cluster?.vxlanPort).toBe(4789);

    await api.createEndpoint({ network: 'net1', node: 'h1', name: 'c1' });
    await waitUntil(() => changesOf(a.messages).includes('+endpoint:c1'), 5000);
    const lagging = (await api.listNodes({})).nodes.find((n) => n.node?.name === 'h1')!;
    expect(lagging.status).toBe('ready');
    expect(lagging.lag).toBeGreaterThan(0);
    a.ack(lastRevision(a));
    await waitUntil(async () => (await api.listNodes({})).nodes.find((n) => n.node?.name === 'h1')?.lag === 0, 5000);
    a.close();
  });

  it('resumes after a dropped stream with every change exactly once', async () => {
    const a = connectAgent(mgr, { name: 'h2', addr: '192.168.70.2' });
    await waitUntil(() => a.messages.length >= 1, 10_000);
    const resumeAt = lastRevision(a);
    a.close();
    await api.createEndpoint({ network: 'net1', node: 'h2', name: 'r1' });
    await api.createEndpoint({ network: 'net1', node: 'h2', name: 'r2' });
    await api.deleteEndpoint({ network: 'net1', name: 'r1' });
    const b = connectAgent(mgr, { name: 'h2', addr: '192.168.70.2' }, resumeAt);
    await waitUntil(() => changesOf(b.messages).includes('-endpoint:r1'), 10_000);
    await new Promise((r) => setTimeout(r, 300)); // nothing further may trickle in
    expect(b.messages.some((m) => m.msg?.$case === 'snapshot')).toBe(false);
    // the node record is re-put on reconnect (same content): that is the only other event
    expect(changesOf(b.messages).filter((c) => !c.startsWith('+node'))).toEqual(['+endpoint:r1', '+endpoint:r2', '-endpoint:r1']);
    b.close();
  });

  it('after a manager restart, replays from etcd history exactly once; sends a snapshot when etcd compacted it', async () => {
    const a = connectAgent(mgr, { name: 'h3', addr: '192.168.70.3' });
    await waitUntil(() => a.messages.length >= 1, 10_000);
    const resumeAt = lastRevision(a);
    a.close();
    await api.createEndpoint({ network: 'net1', node: 'h3', name: 'k1' });
    await api.deleteEndpoint({ network: 'net1', name: 'k1' });
    // A new manager has no memory of older revisions: it must replay them from etcd.
    await mgr.stop();
    api.close();
    mgr = await startManagerProcess({ etcd: etcd.endpoint, args: ['--node-ttl=2s', '--node-grace=3s'] });
    api = apiClient(mgr);
    const b = connectAgent(mgr, { name: 'h3', addr: '192.168.70.3' }, resumeAt);
    await waitUntil(() => changesOf(b.messages).includes('-endpoint:k1'), 10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(b.messages.some((m) => m.msg?.$case === 'snapshot')).toBe(false);
    expect(changesOf(b.messages)).toEqual(['+endpoint:k1', '-endpoint:k1']);
    const resumeAgain = lastRevision(b);
    b.close();

    await api.createEndpoint({ network: 'net1', node: 'h3', name: 'k2' });
    await api.createEndpoint({ network: 'net1', node: 'h3', name: 'k3' });
    await mgr.stop();
    api.close();
    const raw = new Etcd3({ hosts: etcd.endpoint });
    const now = Number((await raw.get('x').exec()).header.revision);
    expect(now).toBeGreaterThan(resumeAgain + 1); // so the first revision to replay is really gone
    await raw.kv.compact({ revision: String(now), physical: true });
    raw.close();
    mgr = await startManagerProcess({ etcd: etcd.endpoint, args: ['--node-ttl=2s', '--node-grace=3s'] });
    api = apiClient(mgr);
    const c = connectAgent(mgr, { name: 'h3', addr: '192.168.70.3' }, resumeAgain);
    await waitUntil(() => c.messages.some((m) => m.msg?.$case === 'snapshot'), 10_000, () => mgr.output().slice(-2000));
    const snap = c.messages.find((m) => m.msg?.$case === 'snapshot')!.msg;
    expect(snap?.$case === 'snapshot' && snap.value.endpoints.map((e) => e.name).sort()).toEqual(expect.arrayContaining(['k2', 'k3']));
    expect(changesOf(c.messages)).toEqual([]);
    c.close();
  });

  it('refuses a second stream for a node that is connected (same certificate, another address)', async () => {
    const a = connectAgent(mgr, { name: 'h4', addr: '192.168.70.4' });
    await waitUntil(() => a.messages.length >= 1, 10_000);
    const b = connectAgent(mgr, { name: 'h4', addr: '192.168.70.99' });
    await waitUntil(() => b.errors.length > 0, 10_000);
    expect(b.errors[0]!.details).toContain('node h4 already has a live stream to this manager');
    b.close();
    a.close();
  });

  it('marks a node down after its lease expires and, after the grace period, removes its endpoints and frees their addresses', async () => {
    const a = connectAgent(mgr, { name: 'h5', addr: '192.168.70.5' });
    await waitUntil(() => a.messages.length >= 1, 10_000);
    await api.createEndpoint({ network: 'net1', node: 'h5', name: 'g1' });
    await api.createEndpoint({ network: 'net1', node: 'h5', name: 'g2' });
    const refused = await api.removeNode({ name: 'h5' }).then(() => 'removed', (e: { details: string }) => e.details);
    expect(refused).toContain('is ready');
    const used = (await api.inspectNetwork({ nameOrId: 'net1' })).usage!.allocated;
    a.close();
    const status = async () => (await api.listNodes({})).nodes.find((n) => n.node?.name === 'h5')?.status;
    await waitUntil(async () => (await status()) === 'down', 10_000);
    const downAt = Date.now();
    // still there right after going down: the grace period protects a briefly lost host
    expect((await api.listEndpoints({ node: 'h5' })).endpoints).toHaveLength(2);
    await waitUntil(async () => (await api.listEndpoints({ node: 'h5' })).endpoints.length === 0, 15_000);
    expect(Date.now() - downAt).toBeGreaterThanOrEqual(2000);
    // their addresses are released with them (other test nodes may be swept meanwhile too)
    const after = await api.inspectNetwork({ nameOrId: 'net1' });
    expect(after.usage!.allocated).toBe(after.endpoints.length);
    expect(after.usage!.allocated).toBeLessThanOrEqual(used - 2);
    // a down node can be removed without --force
    expect(await api.removeNode({ name: 'h5' })).toMatchObject({ name: 'h5' });
  });
});
