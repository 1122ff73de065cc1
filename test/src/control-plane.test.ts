import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEtcd, type TestEtcd } from '@ctnet/store';
import { apiClient, connectAgent, startManagerProcess, waitUntil, type AgentConn, type ManagerProcess } from './harness.js';

// ctmgr as a real process on a real etcd, driven over real gRPC.
let etcd: TestEtcd;
let mgr: ManagerProcess;
let api: ReturnType<typeof apiClient>;
let agent: AgentConn;

beforeAll(async () => {
  etcd = await startTestEtcd();
  mgr = await startManagerProcess({ etcd: etcd.endpoint, args: ['--exclude=10.0.4.0/24'] });
  api = apiClient(mgr);
  // A registered node whose host has 10.0.2.0/24 on it: auto subnets must avoid it.
  agent = connectAgent(mgr, { name: 'h1', addr: '192.168.50.1', routes: ['10.0.2.0/24', '192.168.50.0/24', 'default'] });
  await waitUntil(async () => (await api.listNodes({})).nodes.length === 1, 10_000);
});
afterAll(async () => {
  agent?.close();
  api?.close();
  await mgr?.stop();
  await etcd?.stop();
});

const codeOf = (p: Promise<unknown>) => p.then(() => 'OK', (e: { code: number; details: string }) => ({ code: e.code, details: e.details }));

describe('networks', () => {
  it('chooses subnets from the default pool that avoid networks, --exclude ranges and node routes, and VNIs from 4096', async () => {
    const a = await api.createNetwork({ name: 'auto-a' });
    const b = await api.createNetwork({ name: 'auto-b' });
    const c = await api.createNetwork({ name: 'auto-c' }); // 10.0.2.0/24 is a route on h1
    const d = await api.createNetwork({ name: 'auto-d' }); // 10.0.4.0/24 is excluded
    expect([a.subnet, b.subnet, c.subnet, d.subnet]).toEqual(['10.0.0.0/24', '10.0.1.0/24', '10.0.3.0/24', '10.0.5.0/24']);
    expect([a.vni, b.vni, c.vni, d.vni]).toEqual([4096, 4097, 4098, 4099]);
    expect(a).toMatchObject({ driver: 'overlay', gateway: '10.0.0.1', ipRange: '10.0.0.0/24' });
  });

  it('creates with every Docker flag and shows it in inspect and ls', async () => {
    const net = await api.createNetwork({
      name: 'app', driver: 'overlay', subnet: '10.10.0.0/24', gateway: '10.10.0.254', ipRange: '10.10.0.128/25',
      auxAddresses: { router: '10.10.0.200' }, attachable: true, internal: true, options: { mtu: '1400', vni: '5000' },
      labels: { team: 'web' },
    });
    expect(net).toMatchObject({ vni: 5000, mtu: 1400, gateway: '10.10.0.254', attachable: true, internal: true, labels: { team: 'web' } });
    const detail = await api.inspectNetwork({ nameOrId: 'APP' }); // names are case-insensitive
    // 128 addresses in the range, minus .200 (aux) and .254 (gateway) and .255 (broadcast)
    expect(detail.usage).toEqual({ total: 125, allocated: 0, free: 125 });
    const byPrefix = await api.inspectNetwork({ nameOrId: net.id.slice(0, 12) });
    expect(byPrefix.network?.name).toBe('app');
    const ls = await api.listNetworks({});
    expect(ls.networks.map((n) => n.network?.name)).toContain('app');
  });

  it('accepts bridge and macvlan networks, macvlan only with a parent', async () => {
    const br = await api.createNetwork({ name: 'br1', driver: 'bridge', subnet: '172.30.0.0/24' });
    expect(br).toMatchObject({ driver: 'bridge', vni: 0 });
    expect(await codeOf(api.createNetwork({ name: 'mv1', driver: 'macvlan', subnet: '172.31.0.0/24' }))).toMatchObject({
      code: 3,
      details: expect.stringContaining('-o parent='),
    });
    const mv = await api.createNetwork({ name: 'mv1', driver: 'macvlan', subnet: '172.31.0.0/24', options: { parent: 'eth0' } });
    expect(mv.parent).toBe('eth0');
  });

  it.each([
    [{ name: 'x1', subnet: '10.300.0.0/24' }, 3, 'is not an IPv4 address'],
    [{ name: 'x2', subnet: '10.20.0.0/31' }, 3, '/30 or larger'],
    [{ name: 'x3', subnet: '10.20.0.0/32' }, 3, '/30 or larger'],
    [{ name: 'x4', subnet: '10.20.0.0/24', gateway: '10.21.0.1' }, 3, 'outside subnet'],
    [{ name: 'x5', subnet: '10.20.0.0/24', ipRange: '10.20.1.0/25' }, 3, 'not inside subnet'],
    [{ name: 'x6', subnet: '10.10.0.0/16' }, 6, 'overlaps 10.10.0.0/24 (network app)'],
    [{ name: 'app', subnet: '10.20.0.0/24' }, 6, 'already exists'],
    [{ name: 'my_net' }, 3, 'not a valid DNS label'],
    [{ name: 'x7', options: { vni: '16777216' } }, 3, 'option vni'],
    [{ name: 'x8', options: { vni: '5000' } }, 6, 'VNI 5000 is already used by network app'],
    [{ name: 'x9', driver: 'weave' }, 3, 'unknown driver'],
  ])('refuses %j with a clear error and writes nothing', async (req, code, text) => {
    const before = (await api.listNetworks({})).networks.length;
    const res = await codeOf(api.createNetwork(req));
    expect(res).toMatchObject({ code, details: expect.stringContaining(text) });
    expect((await api.listNetworks({})).networks.length).toBe(before);
  });
});

describe('endpoints and IPAM', () => {
  it('hands out addresses in order, with Docker MACs, inside the ip-range', async () => {
    const e1 = await api.createEndpoint({ network: 'app', node: 'h1', name: 'web1', aliases: ['web'] });
    const e2 = await api.createEndpoint({ network: 'app', node: 'h1', name: 'web2' });
    expect([e1.ip, e2.ip]).toEqual(['10.10.0.128', '10.10.0.129']);
    expect(e1.mac).toBe('02:42:0a:0a:00:80');
    expect(e1.aliases).toEqual(['web']);
  });

  it('does not hand a freed address out again at once', async () => {
    await api.deleteEndpoint({ network: 'app', name: 'web2' });
    const e3 = await api.createEndpoint({ network: 'app', node: 'h1', name: 'web3' });
    expect(e3.ip).toBe('10.10.0.130');
  });

  it.each([
    [{ name: 's1', ip: '10.10.0.128' }, 6, 'already in use in network app by web1'],
    [{ name: 's2', ip: '10.10.0.5' }, 3, 'outside the ip-range 10.10.0.128/25'],
    [{ name: 's3', ip: '10.11.0.5' }, 3, 'outside subnet'],
    [{ name: 's4', ip: '10.10.0.200' }, 3, 'reserved'],
    [{ name: 'web1' }, 6, 'an endpoint named web1 already exists'],
    [{ name: 's5', node: 'nowhere' }, 5, 'node nowhere is not registered'],
    [{ name: 's6', network: 'nonet' }, 5, 'network nonet not found'],
  ])('refuses %j and leaks no address', async (req, code, text) => {
    const before = (await api.inspectNetwork({ nameOrId: 'app' })).usage;
    const res = await codeOf(api.createEndpoint({ network: 'app', node: 'h1', ...req }));
    expect(res).toMatchObject({ code, details: expect.stringContaining(text) });
    expect((await api.inspectNetwork({ nameOrId: 'app' })).usage).toEqual(before);
  });

  it('takes a free static address', async () => {
    const s = await api.createEndpoint({ network: 'app', node: 'h1', name: 'static', ip: '10.10.0.250', mac: '02:00:00:00:00:01' });
    expect(s).toMatchObject({ ip: '10.10.0.250', mac: '02:00:00:00:00:01' });
  });

  it('refuses to remove a network that has endpoints, naming them; removes it once empty', async () => {
    const res = await codeOf(api.removeNetwork({ nameOrId: 'app' }));
    expect(res).toMatchObject({ code: 9, details: expect.stringMatching(/3 endpoint\(s\): static \(node h1\), web1 \(node h1\), web3/) });
    for (const name of ['static', 'web1', 'web3']) await api.deleteEndpoint({ network: 'app', name });
    expect((await api.inspectNetwork({ nameOrId: 'app' })).usage?.allocated).toBe(0);
    await api.removeNetwork({ nameOrId: 'app' });
    expect(await codeOf(api.inspectNetwork({ nameOrId: 'app' }))).toMatchObject({ code: 5 });
  });
});

describe('restart', () => {
  it('keeps every network and endpoint across a manager restart', async () => {
    await api.createEndpoint({ network: 'auto-a', node: 'h1', name: 'keep' });
    const before = await api.listNetworks({});
    await mgr.stop();
    api.close();
    agent.close();
    mgr = await startManagerProcess({ etcd: etcd.endpoint, args: ['--exclude=10.0.4.0/24'] });
    api = apiClient(mgr);
    agent = connectAgent(mgr, { name: 'h1', addr: '192.168.50.1' });
    const after = await api.listNetworks({});
    expect(after).toEqual(before);
    const ep = (await api.inspectNetwork({ nameOrId: 'auto-a' })).endpoints.map((e) => [e.name, e.ip]);
    expect(ep).toEqual([['keep', '10.0.0.2']]);
    // the cursor survives too: the next address follows the last one handed out
    expect((await api.createEndpoint({ network: 'auto-a', node: 'h1', name: 'next' })).ip).toBe('10.0.0.3');
  });
});
