import { describe, expect, it } from 'vitest';
import { desiredHost, type ClusterState } from '../desired/host.js';
import { buildZone, lookup } from '../dns/zone.js';
import { parseCidr, parseIPv4 } from '../net/ipv4.js';
import { planOverlays } from '../plan/overlay.js';
import { projectApplied } from '../plan/project.js';
import { desiredHostRules } from '../policy/host-rules.js';
import { desiredSandboxRules } from '../policy/sandbox-rules.js';
import { expectInvalid } from '../testing/expect-invalid.js';
import type { Container } from './container.js';
import type { Endpoint } from './endpoint.js';
import { DEFAULT_BRIDGE_OPTION, hostPrefixOf, hostSubnetsOf, networkOnNode, pickHostSubnet } from './local.js';
import { buildNetwork, parseNetworkRequest, type Network } from './network.js';

const base = { vni: 0, auxAddresses: {}, attachable: false, internal: false, mtu: 0, parent: '', options: {}, labels: {}, createdAt: '' };
const pooled: Network = {
  ...base, id: 'bbbbbbbb0001', name: 'local', driver: 'bridge', subnet: '10.50.0.0/16', gateway: '', ipRange: '10.50.0.0/16',
  node: '', hostSubnets: { h1: '10.50.0.0/24', h2: '10.50.1.0/24' },
};
const docker0: Network = { ...pooled, id: 'dddddddd0001', name: 'bridge', subnet: '172.17.0.0/16', ipRange: '172.17.0.0/16', options: { [DEFAULT_BRIDGE_OPTION]: 'true' }, hostSubnets: { h1: '172.17.0.0/24', h2: '172.17.1.0/24' } };
const mac: Network = { ...base, id: 'mmmmmmmm0001', name: 'pub', driver: 'macvlan', subnet: '192.168.7.0/24', gateway: '192.168.7.254', ipRange: '192.168.7.128/25', parent: 'eth0' };

const ep = (net: Network, name: string, node: string, ip: string, container: string): Endpoint => ({
  id: `${name}-${net.id}`, networkId: net.id, name, node, ip, mac: `02:42:00:00:00:${ip.split('.')[3]!.padStart(2, '0')}`, aliases: [], createdAt: `2026-01-01T00:00:0${name.length}Z`, container,
});
const ctr = (id: string, name: string, node: string): Container => ({ id, name, node, cmd: ['sleep', '1'], env: {}, hostname: name, dns: [], dnsSearch: [], createdAt: '', mode: 'network' });
const node = (name: string, addr: string) => ({ name, addr, hostname: name, labels: {}, routes: [], registeredAt: '' });

const state: ClusterState = {
  networks: new Map([pooled, docker0, mac].map((n) => [n.id, n])),
  nodes: new Map([['h1', node('h1', '192.168.7.1')], ['h2', node('h2', '192.168.7.2')]]),
  containers: new Map([ctr('c1', 'a', 'h1'), ctr('c2', 'b', 'h2'), ctr('c3', 'c', 'h1'), ctr('c4', 'd', 'h1')].map((c) => [c.id, c])),
  endpoints: new Map(
    [
      ep(pooled, 'a', 'h1', '10.50.0.2', 'c1'),
      ep(pooled, 'b', 'h2', '10.50.1.2', 'c2'),
      ep(docker0, 'c', 'h1', '172.17.0.2', 'c3'),
      ep(mac, 'd', 'h1', '192.168.7.130', 'c4'),
    ].map((e) => [e.id, e]),
  ),
};
const ctx = { node: 'h1', advertiseAddr: '192.168.7.1', underlayMtu: 1500, vxlanPort: 4789 };

describe('bridge network requests', () => {
  it('a bridge network on every host takes no --gateway or --ip-range (each host has its own subnet)', () => {
    expectInvalid(() => parseNetworkRequest({ name: 'l', driver: 'bridge', subnet: '10.9.0.0/16', gateway: '10.9.0.1' }), /--gateway on a bridge network needs --node/);
    expectInvalid(() => parseNetworkRequest({ name: 'l', driver: 'bridge', subnet: '10.9.0.0/16', ipRange: '10.9.1.0/24' }), /--ip-range .* needs --node/);
    expect(parseNetworkRequest({ name: 'l', driver: 'bridge', subnet: '10.9.0.0/24', gateway: '10.9.0.9', node: 'H1' })).toMatchObject({ node: 'H1', gateway: parseIPv4('10.9.0.9') });
  });

  it('--node is for bridge networks only', () => {
    expectInvalid(() => parseNetworkRequest({ name: 'o', node: 'h1' }), /--node applies to bridge networks only/);
    expectInvalid(() => parseNetworkRequest({ name: 'm', driver: 'macvlan', subnet: '10.1.0.0/24', options: { parent: 'eth0' }, node: 'h1' }), /--node applies to bridge/);
  });

  it('macvlan needs a parent and a subnet', () => {
    expectInvalid(() => parseNetworkRequest({ name: 'm', driver: 'macvlan', subnet: '10.1.0.0/24' }), /needs its parent interface; add -o parent=IFACE/);
    expectInvalid(() => parseNetworkRequest({ name: 'm', driver: 'macvlan', options: { parent: 'eth0' } }), /give its --subnet/);
  });

  it('a pooled bridge network is stored without a gateway of its own', () => {
    const spec = parseNetworkRequest({ name: 'l', driver: 'bridge', subnet: '10.9.0.0/16' });
    const net = buildNetwork(spec, { id: 'x', subnet: spec.subnet!, vni: 0, createdAt: '' });
    expect(net).toMatchObject({ gateway: '', node: '', hostSubnets: {}, vni: 0 });
  });
});

describe('per-host subnets', () => {
  it('cuts /24s from large pools, sixteen slices from small ones, never below a /30', () => {
    expect(hostPrefixOf(parseCidr('172.17.0.0/16'))).toBe(24);
    expect(hostPrefixOf(parseCidr('10.0.0.0/20'))).toBe(24);
    expect(hostPrefixOf(parseCidr('10.0.0.0/22'))).toBe(26);
    expect(hostPrefixOf(parseCidr('10.0.0.0/28'))).toBe(30);
    expect(hostPrefixOf(parseCidr('10.0.0.0/30'))).toBe(30);
  });

  it('a node sees its own subnet with the first address as gateway; a pinned network only on its node', () => {
    expect(networkOnNode(pooled, 'H2')).toMatchObject({ subnet: '10.50.1.0/24', gateway: '10.50.1.1', ipRange: '10.50.1.0/24' });
    expect(networkOnNode(pooled, 'h3')).toBeUndefined();
    const pinned: Network = { ...pooled, node: 'h1', subnet: '10.60.0.0/24', gateway: '10.60.0.9', hostSubnets: {} };
    expect(networkOnNode(pinned, 'h1')).toBe(pinned);
    expect(networkOnNode(pinned, 'h2')).toBeUndefined();
    expect(networkOnNode(mac, 'h9')).toBe(mac);
    expect(hostSubnetsOf(pooled)).toEqual([
      { node: 'h1', subnet: '10.50.0.0/24', gateway: '10.50.0.1' },
      { node: 'h2', subnet: '10.50.1.0/24', gateway: '10.50.1.1' },
    ]);
  });

  it('picks the next free slice, clear of the node\'s routes; says what blocks it when none is left', () => {
    expect(pickHostSubnet(pooled, 'h3', [])).toEqual(parseCidr('10.50.2.0/24'));
    expect(pickHostSubnet(pooled, 'h3', ['10.50.2.0/23', '192.168.0.0/24'])).toEqual(parseCidr('10.50.4.0/24'));
    const small: Network = { ...pooled, subnet: '10.70.0.0/24', hostSubnets: {} };
    expect(() => pickHostSubnet(small, 'h1', ['10.70.0.0/24'])).toThrow(/no \/28 of its pool 10.70.0.0\/24 left for node h1 .*routes 10.70.0.0\/24 overlap it/);
  });
});

describe('local drivers on a host', () => {
  const d = desiredHost(state, ctx, 'ctns-');

  it('a bridge network gets a bridge with this host\'s gateway and no VXLAN; macvlan adds nothing to the host', () => {
    expect(d.overlays.map((o) => [o.bridge, o.vxlan, o.gatewayCidr, o.mtu, o.fdb.length])).toEqual([
      ['ctbr-bbbbbbbb', '', '10.50.0.1/24', 1500, 0],
      ['ctbr-dddddddd', '', '172.17.0.1/24', 1500, 0],
    ]);
    const plan = planOverlays(d, { links: [], addrs: [], fdb: [], neigh: [] });
    expect(plan.some((op) => op.op === 'vxlan-add')).toBe(false);
    expect(planOverlays(d, projectApplied(d, { links: [], addrs: [], fdb: [], neigh: [] }))).toEqual([]);
  });

  it('sandboxes: a veth on the host\'s bridge subnet; a macvlan sub-interface of the parent on the shared subnet', () => {
    const byName = new Map(d.sandboxes.map((s) => [s.container.name, s.interfaces[0]]));
    expect(byName.get('a')).toMatchObject({ kind: 'veth', cidr: '10.50.0.2/24', gateway: '10.50.0.1', hostVeth: 'ctve-a-bbbbbb', bridge: 'ctbr-bbbbbbbb' });
    expect(byName.get('d')).toMatchObject({ kind: 'macvlan', parent: 'eth0', cidr: '192.168.7.130/24', gateway: '192.168.7.254', hostVeth: '', bridge: '', mtu: 1500 });
  });

  it('a macvlan-only sandbox gets no 127.0.0.11 redirect (its gateway is the segment\'s router)', () => {
    const sb = d.sandboxes.find((s) => s.container.name === 'd')!;
    expect(desiredSandboxRules(sb, []).chains.filter((c) => c.name !== 'martians').flatMap((c) => c.rules)).toEqual([]);
    const a = d.sandboxes.find((s) => s.container.name === 'a')!;
    expect(desiredSandboxRules(a, []).chains[0]!.rules).toContain('ip daddr 127.0.0.11 udp dport 53 dnat to 10.50.0.1:53');
  });

  it('bridge networks are isolated and masqueraded like overlays', () => {
    const rules = desiredHostRules(state, ctx, d.overlays).chains.flatMap((c) => c.rules);
    expect(rules).toContain('oifname "ctbr-bbbbbbbb" iifname != "ctbr-bbbbbbbb" drop');
    expect(rules).toContain('ip saddr 10.50.0.0/16 oifname != "ctbr-bbbbbbbb" masquerade');
  });
});

describe('names on local networks', () => {
  const zone = buildZone(state, 'h1');
  const q = (from: string, name: string) => lookup(zone, parseIPv4(from), name, 1);

  it('a user-defined bridge network resolves the names on this host only', () => {
    expect(q('10.50.0.2', 'a')).toEqual({ kind: 'a', addrs: [parseIPv4('10.50.0.2')] });
    expect(q('10.50.0.2', 'b')).toEqual({ kind: 'forward' }); // b lives on h2: not a name here
    expect(lookup(buildZone(state, 'h2'), parseIPv4('10.50.1.2'), 'b', 1)).toEqual({ kind: 'a', addrs: [parseIPv4('10.50.1.2')] });
  });

  it('the default bridge resolves no container names, but still forwards', () => {
    expect(q('172.17.0.2', 'c')).toEqual({ kind: 'forward' });
    expect(q('172.17.0.2', 'example.org')).toEqual({ kind: 'forward' });
  });
});
