import { describe, expect, it } from 'vitest';
import type { ClusterState } from '../desired/host.js';
import type { Container } from '../model/container.js';
import type { Endpoint } from '../model/endpoint.js';
import type { Network } from '../model/network.js';
import { parseIPv4 } from '../net/ipv4.js';
import { buildZone, lookup } from './zone.js';

const net = (id: string, name: string): Network => ({
  id, name, driver: 'overlay', vni: 1, subnet: '10.0.0.0/8', gateway: '10.0.0.1', ipRange: '10.0.0.0/8',
  auxAddresses: {}, attachable: false, internal: false, mtu: 0, parent: '', options: {}, labels: {}, createdAt: '',
});
const ep = (networkId: string, name: string, ip: string, container: string, aliases: string[] = []): Endpoint => ({
  id: `${name}-${networkId}`, networkId, name, node: 'h1', ip, mac: '02:42:00:00:00:00', aliases, createdAt: '', container,
});
const state: ClusterState = {
  networks: new Map([['n1', net('n1', 'app')], ['n2', net('n2', 'db')]]),
  nodes: new Map(),
  containers: new Map(),
  endpoints: new Map(
    [
      ep('n1', 'Web', '10.1.0.2', 'cw', ['www']),
      ep('n1', 'api', '10.1.0.3', 'ca'),
      ep('n2', 'api', '10.2.0.3', 'ca'), // api is on both networks
      ep('n2', 'pg', '10.2.0.4', 'cp'),
    ].map((e) => [e.id, e]),
  ),
};
const zone = buildZone(state);
const ip = (t: string) => parseIPv4(t);
const q = (from: string, name: string, type = 1) => lookup(zone, ip(from), name, type);

describe('embedded DNS zone', () => {
  it('answers container names and aliases on the asker\'s networks, case-insensitively', () => {
    expect(q('10.1.0.3', 'web')).toEqual({ kind: 'a', addrs: [ip('10.1.0.2')] });
    expect(q('10.1.0.3', 'www')).toEqual({ kind: 'a', addrs: [ip('10.1.0.2')] });
  });

  it('scopes answers: a name only on another network is NXDOMAIN; <name>.<network> picks the network', () => {
    expect(q('10.1.0.2', 'pg')).toEqual({ kind: 'nxdomain' });
    expect(q('10.1.0.3', 'pg')).toEqual({ kind: 'a', addrs: [ip('10.2.0.4')] }); // api is on db too
    expect(q('10.1.0.3', 'api.db')).toEqual({ kind: 'a', addrs: [ip('10.2.0.3')] });
    expect(q('10.1.0.2', 'pg.db')).toEqual({ kind: 'nxdomain' }); // lives only on a network web is not on
    // Not a cluster name (nobody is called that; pg is not on app): forwarded like any unknown name.
    expect(q('10.1.0.2', 'nobody.app')).toEqual({ kind: 'forward' });
    expect(q('10.1.0.2', 'pg.app')).toEqual({ kind: 'forward' });
  });

  it('gives every address of a name seen on several of the asker\'s networks', () => {
    expect(q('10.2.0.3', 'api')).toEqual({ kind: 'a', addrs: [ip('10.1.0.3'), ip('10.2.0.3')] });
  });

  it('answers PTR for endpoint addresses, NODATA for AAAA of a known name, forwards the rest', () => {
    expect(q('10.1.0.3', '2.0.1.10.in-addr.arpa', 12)).toEqual({ kind: 'ptr', name: 'Web.app' });
    expect(q('10.1.0.3', 'web', 28)).toEqual({ kind: 'nodata' });
    expect(q('10.1.0.3', 'example.com')).toEqual({ kind: 'forward' });
    expect(q('10.1.0.3', 'unheard-of')).toEqual({ kind: 'forward' });
  });

  it('refuses anyone who is not an endpoint (never an open resolver)', () => {
    expect(q('192.168.1.1', 'web')).toEqual({ kind: 'refused' });
  });
});

describe('embedded DNS zone: services', () => {
  const task = (id: string, slot: number, mode: 'vip' | 'dnsrr', state: string, desired: 'running' | 'shutdown' = 'running'): Container => ({
    id, name: `svc.${slot}.${id}`, node: 'h1', cmd: ['x'], env: {}, hostname: '', dns: [], dnsSearch: [], createdAt: '', mode: 'network', sharedWith: '', attachPid: 0,
    task: { serviceId: 's', service: mode === 'vip' ? 'web' : 'rr', slot, endpointMode: mode, desired },
    status: { state: state as 'running', message: '', exitCode: 0, restarts: 0, since: '' },
  });
  const containers = [
    task('a1', 1, 'vip', 'running'),
    task('a2', 2, 'vip', 'starting'), // not up yet: not in DNS
    task('b1', 1, 'dnsrr', 'running'),
    task('b2', 2, 'dnsrr', 'running'),
    task('b3', 3, 'dnsrr', 'running', 'shutdown'), // retiring: already withdrawn
  ];
  const s: ClusterState = {
    networks: new Map([['n1', net('n1', 'app')]]),
    nodes: new Map(),
    containers: new Map(containers.map((c) => [c.name, c])),
    endpoints: new Map(
      [
        ep('n1', 'web', '10.1.0.100', ''), // the VIP: a bare endpoint named after the service
        ep('n1', 'svc.1.a1', '10.1.0.11', 'a1'),
        ep('n1', 'svc.2.a2', '10.1.0.12', 'a2'),
        ep('n1', 'svc.1.b1', '10.1.0.21', 'b1'),
        ep('n1', 'svc.2.b2', '10.1.0.22', 'b2'),
        ep('n1', 'svc.3.b3', '10.1.0.23', 'b3'),
        ep('n1', 'client', '10.1.0.50', 'cc'),
      ].map((e) => [e.id, e]),
    ),
  };
  const z = buildZone(s);
  const ask = (name: string, turn = 0, type = 1) => lookup(z, ip('10.1.0.50'), name, type, turn);

  it('vip: the name is the VIP; tasks.<svc> and task names only for running, wanted tasks', () => {
    expect(ask('web')).toEqual({ kind: 'a', addrs: [ip('10.1.0.100')] });
    expect(ask('tasks.web')).toEqual({ kind: 'a', addrs: [ip('10.1.0.11')] });
    expect(ask('svc.1.a1')).toEqual({ kind: 'a', addrs: [ip('10.1.0.11')] });
    expect(ask('svc.2.a2')).toEqual({ kind: 'forward' }); // not up: unknown, not an address that is not serving
    expect(ask('12.0.1.10.in-addr.arpa', 0, 12)).toEqual({ kind: 'forward' });
    expect(ask('11.0.1.10.in-addr.arpa', 0, 12)).toEqual({ kind: 'ptr', name: 'svc.1.a1.app' });
  });

  it('dnsrr: every serving task, rotated by the turn; tasks.<svc>.<network> works too', () => {
    const all = [ip('10.1.0.21'), ip('10.1.0.22')];
    expect(ask('rr', 0)).toEqual({ kind: 'a', addrs: all });
    expect(ask('rr', 1)).toEqual({ kind: 'a', addrs: [all[1], all[0]] });
    expect(ask('tasks.rr', 1)).toEqual({ kind: 'a', addrs: all }); // tasks.<svc> is not rotated
    expect(ask('tasks.rr.app')).toEqual({ kind: 'a', addrs: all });
    expect(ask('svc.3.b3')).toEqual({ kind: 'forward' });
  });

  it('a Docker container (no VIP balancing in its sandbox) gets a vip service\'s running tasks, rotated; others the VIP', () => {
    const withDocker: ClusterState = {
      ...s,
      endpoints: new Map([
        ...[...s.endpoints].filter(([k]) => k !== 'web-n1'),
        ['web-n1', { ...ep('n1', 'web', '10.1.0.100', ''), node: '' }], // a VIP has no node
        ['dk-n1', { ...ep('n1', 'dk-1', '10.1.0.60', ''), origin: 'docker' as const, aliases: ['dockerweb'] }],
      ]),
    };
    const zd = buildZone(withDocker);
    expect(lookup(zd, ip('10.1.0.60'), 'web', 1, 0)).toEqual({ kind: 'a', addrs: [ip('10.1.0.11')] });
    expect(lookup(zd, ip('10.1.0.50'), 'web', 1, 0)).toEqual({ kind: 'a', addrs: [ip('10.1.0.100')] });
    expect(lookup(zd, ip('10.1.0.50'), 'dockerweb', 1, 0)).toEqual({ kind: 'a', addrs: [ip('10.1.0.60')] });
    expect(lookup(zd, ip('10.1.0.60'), 'rr', 1, 1)).toEqual({ kind: 'a', addrs: [ip('10.1.0.22'), ip('10.1.0.21')] });
  });

  it('a task that is not up can still ask (its address is in the view)', () => {
    expect(lookup(z, ip('10.1.0.12'), 'web', 1)).toEqual({ kind: 'a', addrs: [ip('10.1.0.100')] });
  });
});

describe('embedded DNS zone: networks named like top-level domains', () => {
  const s: ClusterState = {
    networks: new Map([['nc', net('nc', 'com')], ['nl', net('nl', 'local')], ['ni', net('ni', 'internal')], ['nx', net('nx', 'other')]]),
    nodes: new Map(),
    containers: new Map(),
    endpoints: new Map(
      [
        ep('nc', 'web', '10.3.0.2', 'cw', ['www']),
        ep('nl', 'web', '10.4.0.2', 'cw'),
        ep('ni', 'web', '10.5.0.2', 'cw'),
        ep('nc', 'client', '10.3.0.9', 'cc'),
        ep('nl', 'client', '10.4.0.9', 'cc'),
        ep('ni', 'client', '10.5.0.9', 'cc'),
        ep('nx', 'example', '10.6.0.2', 'ce'), // `example` lives on another network than com
        ep('nx', 'db', '10.6.0.3', 'cd'),
      ].map((e) => [e.id, e]),
    ),
  };
  const z = buildZone(s);
  const ask = (name: string, type = 1) => lookup(z, ip('10.3.0.9'), name, type);

  it('a network named com does not capture the com top-level domain: example.com, foo.local, x.internal are forwarded', () => {
    for (const name of ['example.com', 'foo.local', 'x.internal', 'www.example.com', 'a.b.local']) {
      expect(ask(name), name).toEqual({ kind: 'forward' });
      expect(ask(name, 28), `${name} AAAA`).toEqual({ kind: 'forward' });
    }
    // Not even when the first label is a cluster name on some other network.
    expect(ask('example.com')).toEqual({ kind: 'forward' });
    expect(ask('db.local')).toEqual({ kind: 'forward' });
  });

  it('a network named com still answers exact cluster names: web.com, www.com, web.local, web.internal', () => {
    expect(ask('web.com')).toEqual({ kind: 'a', addrs: [ip('10.3.0.2')] });
    expect(ask('www.com')).toEqual({ kind: 'a', addrs: [ip('10.3.0.2')] });
    expect(ask('web.local')).toEqual({ kind: 'a', addrs: [ip('10.4.0.2')] });
    expect(ask('web.internal')).toEqual({ kind: 'a', addrs: [ip('10.5.0.2')] });
    expect(ask('web.com', 28)).toEqual({ kind: 'nodata' });
    expect(ask('2.0.3.10.in-addr.arpa', 12)).toEqual({ kind: 'ptr', name: 'web.com' });
    // A cluster name on a network the asker is not on stays NXDOMAIN (as documented).
    expect(ask('example.other')).toEqual({ kind: 'nxdomain' });
    expect(ask('db')).toEqual({ kind: 'nxdomain' });
  });
});

describe('embedded DNS zone: --internal networks', () => {
  const internal = (id: string, name: string): Network => ({ ...net(id, name), internal: true });
  const s: ClusterState = {
    networks: new Map([['ni', internal('ni', 'back')], ['no', net('no', 'front')]]),
    nodes: new Map(),
    containers: new Map(),
    endpoints: new Map(
      [
        ep('ni', 'db', '10.7.0.2', 'cd'), // internal only
        ep('ni', 'api', '10.7.0.3', 'ca'), // internal and front: has a way out
        ep('no', 'api', '10.8.0.3', 'ca'),
        ep('no', 'web', '10.8.0.4', 'cw'),
      ].map((e) => [e.id, e]),
    ),
  };
  const z = buildZone(s);

  it('a container only on --internal networks never has a name forwarded; cluster names still answer', () => {
    const db = (name: string, type = 1) => lookup(z, ip('10.7.0.2'), name, type);
    expect(db('example.com')).toEqual({ kind: 'isolated' });
    expect(db('1.1.168.192.in-addr.arpa', 12)).toEqual({ kind: 'isolated' });
    expect(db('api')).toEqual({ kind: 'a', addrs: [ip('10.7.0.3')] });
    expect(db('api.back')).toEqual({ kind: 'a', addrs: [ip('10.7.0.3')] });
    expect(db('web')).toEqual({ kind: 'nxdomain' }); // only on front
    expect(db('3.0.7.10.in-addr.arpa', 12)).toEqual({ kind: 'ptr', name: 'api.back' });
  });

  it('one network with a way out is enough to forward (both addresses of such a container)', () => {
    expect(lookup(z, ip('10.7.0.3'), 'example.com', 1)).toEqual({ kind: 'forward' });
    expect(lookup(z, ip('10.8.0.3'), 'example.com', 1)).toEqual({ kind: 'forward' });
    expect(lookup(z, ip('10.8.0.4'), 'example.com', 1)).toEqual({ kind: 'forward' });
  });
});
