import { describe, expect, it } from 'vitest';
import { desiredHost, type ClusterState } from '../desired/host.js';
import type { Container } from '../model/container.js';
import type { Endpoint } from '../model/endpoint.js';
import type { Network } from '../model/network.js';
import type { Node } from '../model/node.js';
import type { ActualHost, ActualLink } from './actual.js';
import { planOverlays } from './overlay.js';
import { projectApplied } from './project.js';

const net: Network = {
  id: 'aaaaaaaa11112222', name: 'app', driver: 'overlay', vni: 4096, subnet: '10.10.0.0/24', gateway: '10.10.0.1',
  ipRange: '10.10.0.0/24', auxAddresses: {}, attachable: false, internal: false, mtu: 0, parent: '', options: {}, labels: {}, createdAt: '',
};
const node = (name: string, addr: string): Node => ({ name, addr, hostname: name, labels: {}, routes: [], registeredAt: '' });
const ep = (name: string, nodeName: string, ip: string, container = ''): Endpoint => ({
  id: `${name}-id-0000`, networkId: net.id, name, node: nodeName, ip, mac: `02:42:0a:0a:00:${ip.split('.')[3]!.padStart(2, '0')}`,
  aliases: [], createdAt: `2026-01-01T00:00:0${ip.split('.')[3]}Z`, container,
});
const ctr: Container = { id: 'cccccccc9999', name: 'web', node: 'h1', cmd: ['sleep', '1'], env: {}, hostname: 'web', dns: [], dnsSearch: [], createdAt: '' };

const state = (endpoints: Endpoint[]): ClusterState => ({
  networks: new Map([[net.id, net]]),
  nodes: new Map([['h1', node('h1', '192.168.1.1')], ['h2', node('h2', '192.168.1.2')], ['h3', node('h3', '192.168.1.3')]]),
  endpoints: new Map(endpoints.map((e) => [`${e.networkId}/${e.name}`, e])),
  containers: new Map([['web', ctr]]),
});
const ctx = { node: 'h1', advertiseAddr: '192.168.1.1', underlayMtu: 1500, vxlanPort: 4789 };
const cluster = state([ep('web', 'h1', '10.10.0.2', ctr.id), ep('db', 'h2', '10.10.0.3'), ep('cache', 'h3', '10.10.0.4')]);
const empty: ActualHost = { links: [], addrs: [], fdb: [], neigh: [] };

/** The kernel state a fully converged h1 has. */
function converged(): ActualHost & { links: ActualLink[] } {
  return {
    links: [
      { name: 'ctbr-aaaaaaaa', kind: 'bridge', mtu: 1450, up: true, mac: '02:42:0a:0a:00:01' },
      { name: 'ctvx-aaaaaaaa', kind: 'vxlan', mtu: 1450, up: true, mac: 'y', master: 'ctbr-aaaaaaaa', vxlan: { vni: 4096, port: 4789, local: '192.168.1.1', learning: false, proxy: true } },
      { name: 'ctve-web-id-0', kind: 'veth', mtu: 1450, up: true, mac: 'z', master: 'ctbr-aaaaaaaa' },
      { name: 'eth0', kind: 'veth', mtu: 1500, up: true, mac: 'u' },
    ],
    addrs: [{ dev: 'ctbr-aaaaaaaa', cidr: '10.10.0.1/24' }, { dev: 'eth0', cidr: '192.168.1.1/24' }],
    fdb: [
      { dev: 'ctvx-aaaaaaaa', mac: '02:42:0a:0a:00:03', dst: '192.168.1.2', permanent: true },
      { dev: 'ctvx-aaaaaaaa', mac: '02:42:0a:0a:00:04', dst: '192.168.1.3', permanent: true },
      { dev: 'ctvx-aaaaaaaa', mac: 'aa:bb:cc:dd:ee:ff', permanent: true }, // the bridge's own entry: not ours
    ],
    neigh: [
      { dev: 'ctvx-aaaaaaaa', ip: '10.10.0.3', mac: '02:42:0a:0a:00:03', permanent: true },
      { dev: 'ctvx-aaaaaaaa', ip: '10.10.0.4', mac: '02:42:0a:0a:00:04', permanent: true },
    ],
  };
}

describe('desiredHost', () => {
  it('puts an overlay on a host with a local endpoint: entries for every remote endpoint, none for local ones', () => {
    const d = desiredHost(cluster, ctx, 'ctns-');
    expect(d.overlays).toHaveLength(1);
    expect(d.overlays[0]).toMatchObject({ bridge: 'ctbr-aaaaaaaa', vxlan: 'ctvx-aaaaaaaa', vni: 4096, mtu: 1450, gatewayCidr: '10.10.0.1/24', port: 4789, local: '192.168.1.1' });
    expect(d.overlays[0]!.fdb).toEqual([{ mac: '02:42:0a:0a:00:03', dst: '192.168.1.2' }, { mac: '02:42:0a:0a:00:04', dst: '192.168.1.3' }]);
    expect(d.sandboxes).toEqual([expect.objectContaining({ netns: 'ctns-cccccccc', interfaces: [expect.objectContaining({ ifname: 'eth0', cidr: '10.10.0.2/24', hostVeth: 'ctve-web-id-0', gateway: '10.10.0.1' })] })]);
  });

  it('leaves a network off a host with no local endpoint on it', () => {
    expect(desiredHost(cluster, { ...ctx, node: 'h9' }, 'ctns-').overlays).toEqual([]);
  });

  it('uses the network MTU when set', () => {
    const s = { ...cluster, networks: new Map([[net.id, { ...net, mtu: 1400 }]]) };
    expect(desiredHost(s, ctx, 'ctns-').overlays[0]!.mtu).toBe(1400);
  });
});

describe('planOverlays', () => {
  const desired = desiredHost(cluster, ctx, 'ctns-');

  it('builds everything on an empty host, devices before entries', () => {
    const plan = planOverlays(desired, empty);
    expect(plan.map((o) => o.op)).toEqual([
      'bridge-add', 'link-set', 'vxlan-add', 'link-set', 'addr-add', 'fdb-replace', 'fdb-replace', 'neigh-replace', 'neigh-replace',
    ]);
    expect(plan[2]).toEqual({ op: 'vxlan-add', name: 'ctvx-aaaaaaaa', vni: 4096, port: 4789, local: '192.168.1.1', mtu: 1450 });
  });

  it('plans nothing on a converged host', () => {
    expect(planOverlays(desired, converged())).toEqual([]);
  });

  it('pins the bridge MAC to the gateway\'s derived one, so new ports never change the gateway MAC', () => {
    expect(planOverlays(desired, empty)[0]).toEqual({ op: 'bridge-add', name: 'ctbr-aaaaaaaa', mtu: 1450, mac: '02:42:0a:0a:00:01' });
    const a = converged();
    a.links[0] = { ...a.links[0]!, mac: '02:42:0a:0a:00:99' }; // a port with a lower MAC joined
    expect(planOverlays(desired, a)).toEqual([{ op: 'link-set', name: 'ctbr-aaaaaaaa', mac: '02:42:0a:0a:00:01' }]);
  });

  it('repairs drift: a deleted FDB entry, a wrong destination, a deleted neighbour, learning switched on', () => {
    const a = converged();
    a.fdb.splice(0, 1);
    (a.fdb as { dst?: string }[])[0]!.dst = '192.168.1.99';
    (a.neigh as unknown[]).splice(1, 1);
    a.links[1] = { ...a.links[1]!, vxlan: { ...a.links[1]!.vxlan!, learning: true } };
    expect(planOverlays(desired, a)).toEqual([
      { op: 'link-set', name: 'ctvx-aaaaaaaa', vxlanFlags: true },
      { op: 'fdb-replace', dev: 'ctvx-aaaaaaaa', mac: '02:42:0a:0a:00:03', dst: '192.168.1.2' },
      { op: 'fdb-replace', dev: 'ctvx-aaaaaaaa', mac: '02:42:0a:0a:00:04', dst: '192.168.1.3' },
      { op: 'neigh-replace', dev: 'ctvx-aaaaaaaa', ip: '10.10.0.4', mac: '02:42:0a:0a:00:04' },
    ]);
  });

  it('recreates a VXLAN device whose VNI or local address changed, and re-enslaves a loose veth', () => {
    const a = converged();
    a.links[1] = { ...a.links[1]!, vxlan: { ...a.links[1]!.vxlan!, vni: 7 } };
    a.links[2] = { ...a.links[2]!, master: undefined } as ActualLink;
    const plan = planOverlays(desired, a);
    expect(plan.slice(0, 3)).toEqual([
      { op: 'link-del', name: 'ctvx-aaaaaaaa' },
      { op: 'vxlan-add', name: 'ctvx-aaaaaaaa', vni: 4096, port: 4789, local: '192.168.1.1', mtu: 1450 },
      { op: 'link-set', name: 'ctvx-aaaaaaaa', master: 'ctbr-aaaaaaaa', up: true },
    ]);
    expect(plan).toContainEqual({ op: 'link-set', name: 'ctve-web-id-0', master: 'ctbr-aaaaaaaa', mtu: 1450, up: true });
  });

  it('removes entries of endpoints that are gone, flood entries, and devices of networks that are gone', () => {
    const a = converged();
    (a.fdb as unknown[]).push({ dev: 'ctvx-aaaaaaaa', mac: '00:00:00:00:00:00', dst: '192.168.1.7', permanent: true });
    a.links.push({ name: 'ctbr-deadbeef', kind: 'bridge', mtu: 1450, up: true, mac: 'q' }, { name: 'ctvx-deadbeef', kind: 'vxlan', mtu: 1450, up: true, mac: 'r' });
    const gone = desiredHost(state([ep('web', 'h1', '10.10.0.2', ctr.id), ep('db', 'h2', '10.10.0.3')]), ctx, 'ctns-');
    expect(planOverlays(gone, a)).toEqual([
      { op: 'fdb-del', dev: 'ctvx-aaaaaaaa', mac: '02:42:0a:0a:00:04', dst: '192.168.1.3' },
      { op: 'fdb-del', dev: 'ctvx-aaaaaaaa', mac: '00:00:00:00:00:00', dst: '192.168.1.7' },
      { op: 'neigh-del', dev: 'ctvx-aaaaaaaa', ip: '10.10.0.4' },
      { op: 'link-del', name: 'ctvx-deadbeef' },
      { op: 'link-del', name: 'ctbr-deadbeef' },
    ]);
  });

  it('tears down everything of ours when the host has no endpoint left, and touches nothing else', () => {
    const plan = planOverlays({ overlays: [], sandboxes: [] }, converged());
    expect(plan).toEqual([
      { op: 'link-del', name: 'ctvx-aaaaaaaa' },
      { op: 'link-del', name: 'ctve-web-id-0' },
      { op: 'link-del', name: 'ctbr-aaaaaaaa' },
    ]);
  });
});

describe('projectApplied', () => {
  const desired = desiredHost(cluster, ctx, 'ctns-');
  const drifted = (): ActualHost => {
    const a = converged();
    a.fdb.splice(0, 1);
    a.links.push({ name: 'ctbr-deadbeef', kind: 'bridge', mtu: 1450, up: true, mac: 'q' });
    a.links[1] = { ...a.links[1]!, vxlan: { ...a.links[1]!.vxlan!, vni: 7 } };
    return a;
  };
  it.each([
    ['an empty host', () => empty],
    ['a converged host', converged],
    ['a drifted host', drifted],
  ])('is converged after applying the plan to %s', (_, make) => {
    expect(planOverlays(desired, projectApplied(desired, make()))).toEqual([]);
  });

  it('keeps what is not ours', () => {
    const p = projectApplied(desired, converged());
    expect(p.links.find((l) => l.name === 'eth0')).toEqual(converged().links.find((l) => l.name === 'eth0'));
    expect(p.addrs).toContainEqual({ dev: 'eth0', cidr: '192.168.1.1/24' });
    expect(p.fdb).toContainEqual({ dev: 'ctvx-aaaaaaaa', mac: 'aa:bb:cc:dd:ee:ff', permanent: true });
  });
});

describe('Docker endpoints (plugged veths)', () => {
  const dockerEp = { ...ep('dk-1', 'h1', '10.10.0.9'), id: 'dddddddd0000', origin: 'docker' as const };
  const withDocker = state([ep('web', 'h1', '10.10.0.2', ctr.id), ep('db', 'h2', '10.10.0.3'), ep('cache', 'h3', '10.10.0.4'), dockerEp]);
  const plugged: ActualLink = { name: 'ctve-dddddddd', kind: 'veth', mtu: 1500, up: false, mac: 'p' };

  it('keeps the host end Docker holds on its bridge, and never makes one itself', () => {
    const d = desiredHost(withDocker, ctx, 'ctns-');
    expect(d.plugged).toEqual([{ endpointId: 'dddddddd0000', networkId: net.id, hostVeth: 'ctve-dddddddd', bridge: 'ctbr-aaaaaaaa', mtu: 1450 }]);
    const actual = converged();
    // Not there (Docker has not joined yet, or it left): nothing to do, nothing made.
    expect(planOverlays(d, actual)).toEqual([]);
    // There, loose: back on the bridge, not taken for stale.
    expect(planOverlays(d, { ...actual, links: [...actual.links, plugged] })).toEqual([{ op: 'link-set', name: 'ctve-dddddddd', master: 'ctbr-aaaaaaaa', mtu: 1450, up: true }]);
    expect(planOverlays(d, projectApplied(d, { ...actual, links: [...actual.links, plugged] }))).toEqual([]);
  });

  it('removes the host end once its endpoint is gone from the cluster', () => {
    const d = desiredHost(cluster, ctx, 'ctns-');
    const actual = converged();
    expect(planOverlays(d, { ...actual, links: [...actual.links, { ...plugged, master: 'ctbr-aaaaaaaa', up: true, mtu: 1450 }] })).toEqual([{ op: 'link-del', name: 'ctve-dddddddd' }]);
  });
});
