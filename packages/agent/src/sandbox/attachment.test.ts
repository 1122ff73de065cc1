import { describe, expect, it } from 'vitest';
import type { Container, DesiredInterface, DesiredSandbox } from '@ctnet/core';
import { ParentMissingError, namespaceSource, parseNamespaceInterfaces, planInterfaces, plumbBatches, type ActualInterface } from './attachment.js';

const container = (extra: Partial<Container> = {}): Container => ({
  id: 'c1c1c1c1c1', name: 'web', node: 'h1', cmd: ['x'], env: {}, hostname: 'web', dns: [], dnsSearch: [], createdAt: '', mode: 'network', sharedWith: '', attachPid: 0, ...extra,
});
const veth = (n: number, extra: Partial<DesiredInterface> = {}): DesiredInterface => ({
  endpointId: `ep${n}ep${n}ep${n}`, networkId: 'n1', kind: 'veth', parent: '', bridge: 'ctbr-n1', hostVeth: `ctv-ep${n}`, ifname: `eth${n}`,
  mac: `02:42:0a:00:00:0${n}`, cidr: `10.0.0.${n + 2}/24`, gateway: '10.0.0.1', mtu: 1450, ...extra,
});
const sandbox = (interfaces: DesiredInterface[], c: Partial<Container> = {}): DesiredSandbox => ({ container: container(c), netns: 'ctns-c1', ownsNetns: true, interfaces });
const actual = (entries: Record<string, ActualInterface>) => new Map(Object.entries(entries));

describe('planInterfaces', () => {
  it('plumbs every interface of a fresh namespace, the first one with the route and rules', () => {
    const steps = planInterfaces(sandbox([veth(0), veth(1)]), new Map(), new Set());
    expect(steps).toEqual([
      { step: 'plumb', itf: veth(0), first: true, clearInside: false, clearHostVeth: false },
      { step: 'plumb', itf: veth(1), first: false, clearInside: false, clearHostVeth: false },
    ]);
  });

  it('does nothing when the namespace already matches', () => {
    const have = actual({ eth0: { mac: veth(0).mac, kind: 'veth', addrs: [veth(0).cidr] } });
    expect(planInterfaces(sandbox([veth(0)]), have, new Set(['ctv-ep0']))).toEqual([]);
  });

  it('makes an interface again when its host end is gone, clearing the inside first', () => {
    const have = actual({ eth0: { mac: veth(0).mac, kind: 'veth', addrs: [veth(0).cidr] } });
    expect(planInterfaces(sandbox([veth(0)]), have, new Set())).toEqual([{ step: 'plumb', itf: veth(0), first: true, clearInside: true, clearHostVeth: false }]);
  });

  it('makes an interface again when another kind of device holds its name', () => {
    const have = actual({ eth0: { mac: veth(0).mac, kind: 'dummy', addrs: [veth(0).cidr] } });
    expect(planInterfaces(sandbox([veth(0)]), have, new Set(['ctv-ep0']))).toEqual([{ step: 'plumb', itf: veth(0), first: true, clearInside: true, clearHostVeth: true }]);
  });

  it('never replaces a device of a runtime\'s or process\'s own under the interface\'s name', () => {
    const have = actual({ eth0: { mac: '02:00:00:00:00:99', kind: 'dummy', addrs: [] } });
    expect(() => planInterfaces(sandbox([veth(0)], { attachNetns: '/proc/9/ns/net' }), have, new Set())).toThrow(/a device ctnet did not make/);
    expect(() => planInterfaces(sandbox([veth(0)], { attachPid: 9 }), have, new Set())).toThrow(/a device ctnet did not make/);
  });

  it('clears a host end left behind when the inside is gone', () => {
    expect(planInterfaces(sandbox([veth(0)]), new Map(), new Set(['ctv-ep0']))).toEqual([{ step: 'plumb', itf: veth(0), first: true, clearInside: false, clearHostVeth: true }]);
  });

  it('puts back a changed address or MAC without remaking the device', () => {
    const have = actual({ eth0: { mac: veth(0).mac, kind: 'veth', addrs: ['10.9.9.9/24'] } });
    expect(planInterfaces(sandbox([veth(0)]), have, new Set(['ctv-ep0']))).toEqual([{ step: 'readdress', itf: veth(0) }]);
  });

  it('removes a macvlan interface no longer wanted in its own namespace, never in one brought by a runtime', () => {
    const have = actual({ eth1: { mac: '02:00:00:00:00:09', kind: 'macvlan', addrs: [] }, lo: { mac: '', kind: '', addrs: [] } });
    expect(planInterfaces(sandbox([]), have, new Set())).toEqual([{ step: 'remove', ifname: 'eth1' }]);
    expect(planInterfaces(sandbox([], { attachNetns: '/proc/1/ns/net' }), have, new Set())).toEqual([]);
  });

  it('refuses a macvlan interface whose parent this host lacks', () => {
    const mv = veth(0, { kind: 'macvlan', parent: 'eno9', bridge: '', hostVeth: '' });
    expect(() => planInterfaces(sandbox([mv]), new Map(), new Set())).toThrow(ParentMissingError);
  });
});

describe('namespaceSource', () => {
  it('tells a made namespace from a process’s and a runtime’s', () => {
    expect(namespaceSource(sandbox([]))).toEqual({ kind: 'own' });
    expect(namespaceSource(sandbox([], { attachPid: 42 }))).toEqual({ kind: 'pid', pid: 42 });
    expect(namespaceSource(sandbox([], { attachNetns: '/var/run/netns/cni-1' }))).toEqual({ kind: 'path', path: '/var/run/netns/cni-1' });
  });
});

describe('plumbBatches', () => {
  it('makes a veth\'s peer inside under its final name (no move afterwards) and routes by the first interface only', () => {
    const b = plumbBatches('ctns-c1', veth(0, { ifname: 'net1' }), true);
    expect(b.outside[0]).toBe('link add ctv-ep0 mtu 1450 type veth peer name net1 address 02:42:0a:00:00:00 mtu 1450 netns ctns-c1');
    expect(b.outside.some((l) => / netns ctns-c1$/.test(l) && l.startsWith('link set'))).toBe(false);
    expect(b.inside.at(-1)).toBe('route replace default via 10.0.0.1 dev net1');
    expect(plumbBatches('ctns-c1', veth(1), false).inside.some((l) => l.startsWith('route'))).toBe(false);
  });

  it('moves a macvlan sub-interface in under a temporary name and renames it there', () => {
    const b = plumbBatches('ctns-c1', veth(0, { kind: 'macvlan', parent: 'eno1', bridge: '', hostVeth: '' }), true);
    expect(b.outside).toEqual([`link add ${b.tmp} link eno1 mtu 1450 type macvlan mode bridge`, `link set ${b.tmp} netns ctns-c1`]);
    expect(b.inside).toContain(`link set ${b.tmp} name eth0`);
  });
});

describe('parseNamespaceInterfaces', () => {
  it('reads kind, MAC and IPv4 addresses from ip -d -j addr', () => {
    const json = JSON.stringify([
      { ifname: 'lo', address: '00:00:00:00:00:00', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
      { ifname: 'eth0', address: '02:42:0a:00:00:02', linkinfo: { info_kind: 'veth' }, addr_info: [{ family: 'inet6', local: 'fe80::1', prefixlen: 64 }, { family: 'inet', local: '10.0.0.2', prefixlen: 24 }] },
    ]);
    expect(parseNamespaceInterfaces(json).get('eth0')).toEqual({ mac: '02:42:0a:00:00:02', kind: 'veth', addrs: ['10.0.0.2/24'] });
    expect(parseNamespaceInterfaces('').size).toBe(0);
  });
});
