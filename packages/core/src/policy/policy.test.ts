import { describe, expect, it } from 'vitest';
import { bridgeName, desiredHost, type ClusterState } from '../desired/host.js';
import type { Container } from '../model/container.js';
import type { Endpoint } from '../model/endpoint.js';
import type { Network } from '../model/network.js';
import type { Node } from '../model/node.js';
import { desiredHostRules, FORWARDED_MARK, parseListeners, publishedHere } from './host-rules.js';
import { parseNftTable, renderTable, replaceTableScript, ruleHash, tableInSync, type NftTable } from './nft.js';
import { desiredSandboxRules } from './sandbox-rules.js';
import { serviceTraffic, spreadTo } from './traffic.js';

const net = (id: string, subnet: string, internal = false): Network => ({
  id, name: id, driver: 'overlay', vni: 1, subnet, gateway: subnet.replace(/0\/24$/, '1'), ipRange: subnet,
  auxAddresses: {}, attachable: false, internal, mtu: 0, parent: '', options: {}, labels: {}, createdAt: '',
});
const node = (name: string, addr: string): Node => ({ name, addr, hostname: name, labels: {}, routes: [], registeredAt: '' });
let seq = 0;
const ep = (networkId: string, name: string, nodeName: string, ip: string, container: string): Endpoint => ({
  id: `e${++seq}`, networkId, name, node: nodeName, ip, mac: '02:42:00:00:00:01', aliases: [], createdAt: String(seq).padStart(4, '0'), container,
});
const ctr = (id: string, nodeName: string, extra: Partial<Container> = {}): Container => ({
  id, name: id, node: nodeName, cmd: ['x'], env: {}, hostname: id, dns: [], dnsSearch: [], createdAt: '', mode: 'network', sharedWith: '', attachPid: 0, ...extra,
});
const task = (id: string, nodeName: string, state: 'running' | 'starting', publish = false): Container =>
  ctr(id, nodeName, {
    task: { serviceId: 's1', service: 'web', slot: 1, endpointMode: 'vip', desired: 'running', ...(publish && { publish: [{ protocol: 'tcp', published: 30080, target: 80, mode: 'ingress' }] }) },
    status: { state, message: '', exitCode: 0, restarts: 0, since: '' },
  });

function cluster(): ClusterState {
  const containers = [
    task('t1', 'h1', 'running', true),
    task('t2', 'h2', 'running', true),
    task('t3', 'h2', 'starting', true), // not serving: in no map
    ctr('pub', 'h1', { ports: [{ protocol: 'tcp', hostIp: '', hostPort: 8080, containerPort: 80 }] }),
    ctr('cl', 'h3'),
    ctr('sec', 'h3'),
  ];
  const endpoints = [
    ep('app', 'web', '', '10.0.0.100', ''), // the VIP
    ep('app', 't1', 'h1', '10.0.0.11', 't1'),
    ep('app', 't2', 'h2', '10.0.0.12', 't2'),
    ep('app', 't3', 'h2', '10.0.0.13', 't3'),
    ep('app', 'pub', 'h1', '10.0.0.20', 'pub'),
    ep('app', 'cl', 'h3', '10.0.0.30', 'cl'),
    ep('vault', 'sec', 'h3', '10.9.0.2', 'sec'),
  ];
  return {
    networks: new Map([['app', net('app', '10.0.0.0/24')], ['vault', net('vault', '10.9.0.0/24', true)]]),
    nodes: new Map([['h1', node('h1', '192.168.1.1')], ['h2', node('h2', '192.168.1.2')], ['h3', node('h3', '192.168.1.3')]]),
    containers: new Map(containers.map((c) => [c.name, c])),
    endpoints: new Map(endpoints.map((e) => [e.id, e])),
  };
}
const ctx = (name: string, addr: string) => ({ node: name, advertiseAddr: addr, underlayMtu: 1500, vxlanPort: 4789 });

describe('service traffic', () => {
  it('a VIP balances over the running tasks only; the mesh knows the same tasks on their first network', () => {
    const t = serviceTraffic(cluster());
    expect(t.vips).toEqual([{ service: 'web', networkId: 'app', vip: '10.0.0.100', backends: ['10.0.0.11', '10.0.0.12'] }]);
    expect(t.mesh).toEqual([{ service: 'web', networkId: 'app', publish: [expect.objectContaining({ published: 30080 })], backends: ['10.0.0.11', '10.0.0.12'] }]);
  });
  it('spreads with one map (or DNATs straight to a single backend)', () => {
    expect(spreadTo(['10.0.0.1'])).toBe('dnat to 10.0.0.1');
    expect(spreadTo(['10.0.0.1'], 80)).toBe('dnat to 10.0.0.1:80');
    expect(spreadTo(['10.0.0.1', '10.0.0.2'], 80)).toBe('dnat ip addr . port to numgen inc mod 2 map { 0 : 10.0.0.1 . 80, 1 : 10.0.0.2 . 80 }');
  });
});

describe('host rules', () => {
  it('publish -p on its own node only, with a hairpin mark for traffic from local sandboxes', () => {
    const s = cluster();
    const h1 = desiredHostRules(s, ctx('h1', '192.168.1.1'), desiredHost(s, ctx('h1', '192.168.1.1'), 'p').overlays);
    const publish = h1.chains.find((c) => c.name === 'publish')!.rules;
    expect(publish).toContain('tcp dport 8080 dnat to 10.0.0.20:80');
    expect(publish).toContain(`iifname "ctbr-*" tcp dport 8080 ct mark set ${FORWARDED_MARK} dnat to 10.0.0.20:80`);
    const h3 = desiredHostRules(s, ctx('h3', '192.168.1.3'), desiredHost(s, ctx('h3', '192.168.1.3'), 'p').overlays);
    expect(h3.chains.find((c) => c.name === 'publish')!.rules.some((r) => r.includes('8080'))).toBe(false);
  });

  it('the routing mesh is on every node, and its network is present there even without a local task', () => {
    const s = cluster();
    const overlays = desiredHost(s, ctx('h3', '192.168.1.3'), 'p').overlays;
    expect(overlays.map((o) => o.networkId).sort()).toEqual(['app', 'vault']);
    const rules = desiredHostRules(s, ctx('h3', '192.168.1.3'), overlays);
    expect(rules.chains.find((c) => c.name === 'publish')!.rules).toContain(
      `tcp dport 30080 ct mark set ${FORWARDED_MARK} dnat ip addr . port to numgen inc mod 2 map { 0 : 10.0.0.11 . 80, 1 : 10.0.0.12 . 80 }`,
    );
    expect(rules.chains.find((c) => c.name === 'nat_post')!.rules[0]).toBe(`ct mark ${FORWARDED_MARK} snat to 192.168.1.3`);
  });

  it('masquerades egress of normal networks only; internal ones have no way out; nothing enters a network from elsewhere', () => {
    const s = cluster();
    const overlays = desiredHost(s, ctx('h3', '192.168.1.3'), 'p').overlays;
    const rules = desiredHostRules(s, ctx('h3', '192.168.1.3'), overlays);
    const app = bridgeName('app');
    const vault = bridgeName('vault');
    expect(rules.chains.find((c) => c.name === 'nat_post')!.rules).toEqual([
      `ct mark ${FORWARDED_MARK} snat to 192.168.1.3`,
      `ip saddr 10.0.0.0/24 oifname != "${app}" masquerade`,
    ]);
    expect(rules.chains.find((c) => c.name === 'filter_fwd')!.rules).toEqual([
      'ct state established,related accept',
      'ct status dnat accept',
      `oifname "${app}" iifname != "${app}" drop`,
      `oifname "${vault}" iifname != "${vault}" drop`,
      `iifname "${vault}" oifname != "${vault}" drop`,
    ]);
    expect(rules.chains.find((c) => c.name === 'sandbox_in')!.rules.at(-1)).toBe('drop');
  });

  it('the resolver address of Docker\'s containers is reached from the host and container bridges only, never from the wire', () => {
    const s = cluster();
    const overlays = desiredHost(s, ctx('h3', '192.168.1.3'), 'p').overlays;
    expect(desiredHostRules(s, ctx('h3', '192.168.1.3'), overlays).chains.find((c) => c.name === 'filter_in')!.rules).toHaveLength(1);
    const rules = desiredHostRules(s, ctx('h3', '192.168.1.3'), overlays, { containerResolver: '169.254.53.53' });
    expect(rules.chains.find((c) => c.name === 'filter_in')!.rules[0]).toBe('ip daddr 169.254.53.53 iifname != "lo" iifname != "ctbr-*" iifname != "docker0" iifname != "br-*" drop');
  });

  it('publishes a Docker endpoint\'s ports on its own node, to the endpoint itself', () => {
    const s = cluster();
    const dockerEp: Endpoint = { ...ep('app', 'dk-1', 'h3', '10.0.0.50', ''), origin: 'docker', aliases: ['web'], ports: [{ protocol: 'tcp', hostIp: '', hostPort: 8088, containerPort: 80 }] };
    const withDocker = { ...s, endpoints: new Map([...s.endpoints, ['app/dk-1', dockerEp]]) };
    const overlays = desiredHost(withDocker, ctx('h3', '192.168.1.3'), 'p').overlays;
    expect(desiredHostRules(withDocker, ctx('h3', '192.168.1.3'), overlays).chains.find((c) => c.name === 'publish')!.rules).toContain('tcp dport 8088 dnat to 10.0.0.50:80');
    expect(publishedHere(withDocker, 'h3')).toContainEqual({ protocol: 'tcp', port: 8088, holder: 'Docker container web' });
    const h1 = desiredHost(withDocker, ctx('h1', '192.168.1.1'), 'p').overlays;
    expect(desiredHostRules(withDocker, ctx('h1', '192.168.1.1'), h1).chains.find((c) => c.name === 'publish')!.rules.join('\n')).not.toContain('8088');
  });
});

describe('sandbox rules', () => {
  it('127.0.0.11 and every VIP of the sandbox\'s networks; a VIP without tasks refuses', () => {
    const s = cluster();
    const sb = desiredHost(s, ctx('h3', '192.168.1.3'), 'p').sandboxes.find((x) => x.container.name === 'cl')!;
    const t = desiredSandboxRules(sb, serviceTraffic(s).vips);
    expect(t.chains[0]!.rules).toEqual([
      'ip daddr 127.0.0.11 udp dport 53 dnat to 10.0.0.1:53',
      'ip daddr 127.0.0.11 tcp dport 53 dnat to 10.0.0.1:53',
      'ip daddr 10.0.0.100 dnat to numgen inc mod 2 map { 0 : 10.0.0.11, 1 : 10.0.0.12 }',
    ]);
    // route_localnet is on for 127.0.0.11: loopback destinations from the network are dropped.
    expect(t.chains.find((c) => c.name === 'martians')).toMatchObject({ base: { hook: 'prerouting' }, rules: ['iifname != "lo" ip daddr 127.0.0.0/8 drop'] });
    const empty = desiredSandboxRules(sb, [{ service: 'web', networkId: 'app', vip: '10.0.0.100', backends: [] }]);
    expect(empty.chains.find((c) => c.name === 'filter_out')!.rules).toEqual([
      'ip daddr 10.0.0.100 meta l4proto tcp reject with tcp reset',
      'ip daddr 10.0.0.100 reject',
    ]);
    const other = desiredHost(s, ctx('h3', '192.168.1.3'), 'p').sandboxes.find((x) => x.container.name === 'sec')!;
    expect(desiredSandboxRules(other, serviceTraffic(s).vips).chains[0]!.rules.some((r) => r.includes('10.0.0.100'))).toBe(false);
  });
});

// What `nft -j list table ip t` printed for the table below (nftables 1.0.6), trimmed to what matters.
const table: NftTable = {
  family: 'ip',
  name: 't',
  chains: [
    { name: 'nat_out', base: { type: 'nat', hook: 'output', priority: -100, policy: 'accept' }, rules: ['ip daddr 10.0.0.9 dnat to 10.0.0.2'] },
    { name: 'publish', rules: ['tcp dport 80 dnat to 10.0.0.3:80', 'udp dport 53 dnat to 10.0.0.3:53'] },
  ],
};
const listed = (comments: string[], extraChain = false) =>
  JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6' } },
      { table: { family: 'ip', name: 't', handle: 1 } },
      { chain: { family: 'ip', table: 't', name: 'nat_out', handle: 1, type: 'nat', hook: 'output', prio: -100, policy: 'accept' } },
      { chain: { family: 'ip', table: 't', name: 'publish', handle: 2 } },
      ...(extraChain ? [{ chain: { family: 'ip', table: 't', name: 'mine', handle: 9 } }] : []),
      { rule: { family: 'ip', table: 't', chain: 'nat_out', handle: 3, comment: comments[0], expr: [] } },
      ...comments.slice(1).map((c, i) => ({ rule: { family: 'ip', table: 't', chain: 'publish', handle: 4 + i, ...(c && { comment: c }), expr: [] } })),
    ],
  });

describe('nft tables as data', () => {
  const hashes = ['ip daddr 10.0.0.9 dnat to 10.0.0.2', 'tcp dport 80 dnat to 10.0.0.3:80', 'udp dport 53 dnat to 10.0.0.3:53'].map(ruleHash);

  it('renders each rule with the hash of its text, and replaces the table in one transaction', () => {
    expect(renderTable(table)).toContain(`    tcp dport 80 dnat to 10.0.0.3:80 comment "${hashes[1]}"\n`);
    expect(replaceTableScript(table).split('\n').slice(0, 3)).toEqual(['table ip t {}', 'delete table ip t', 'table ip t {']);
    expect(replaceTableScript({ ...table, chains: [] })).toBe('table ip t {}\ndelete table ip t\n');
  });

  it('is in sync only with the same chains, hooks and rules in the same order', () => {
    expect(tableInSync(table, parseNftTable(listed(hashes)))).toBe(true);
    expect(tableInSync(table, parseNftTable(listed([hashes[0]!, hashes[2]!, hashes[1]!])))).toBe(false); // reordered
    expect(tableInSync(table, parseNftTable(listed(hashes.slice(0, 2))))).toBe(false); // a rule deleted
    expect(tableInSync(table, parseNftTable(listed([...hashes, '']))))
      .toBe(false); // a rule added by hand (no comment)
    expect(tableInSync(table, parseNftTable(listed(hashes, true)))).toBe(false); // a chain added
    expect(tableInSync(table, parseNftTable(listed(hashes).replace('"prio": -100', '"prio": 0').replace('"prio":-100', '"prio":0')))).toBe(false);
    expect(tableInSync(table, parseNftTable(''))).toBe(false); // no table
    expect(tableInSync({ ...table, chains: [] }, undefined)).toBe(true);
  });
});

describe('ports a host process already holds', () => {
  it('reads ss -Hlntup, and leaves a held port out of the rules', () => {
    const ss = [
      'tcp   LISTEN 0      511          0.0.0.0:8080      0.0.0.0:*    users:(("nginx",pid=412,fd=6))',
      'udp   UNCONN 0      0          10.0.0.1:53         0.0.0.0:*    users:(("node",pid=77,fd=21))',
      'tcp   LISTEN 0      4096            [::]:22           [::]:*',
    ].join('\n');
    expect(parseListeners(ss)).toEqual([
      { protocol: 'tcp', port: 8080, process: 'nginx (pid 412)' },
      { protocol: 'udp', port: 53, process: 'node (pid 77)' },
      { protocol: 'tcp', port: 22, process: 'an unknown process' },
    ]);
    const s = cluster();
    expect(publishedHere(s, 'h1').map((p) => `${p.protocol}/${p.port} ${p.holder}`)).toEqual(['tcp/8080 container pub', 'tcp/30080 service web (ingress)']);
    const rules = desiredHostRules(s, ctx('h1', '192.168.1.1'), [], { held: new Set(['tcp/8080', 'tcp/30080']) });
    expect(rules.chains.find((c) => c.name === 'publish')!.rules).toEqual([]);
  });
});
