import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alreadyExists, type Endpoint, type Logger, type Network } from '@ctnet/core';
import type { CreateEndpointRequest, Endpoint as WireEndpoint } from '@ctnet/proto';
import type { LocalState } from '../state.js';
import { loadDockerBindings, type DockerBindings } from './bindings.js';
import { createDockerPlugin } from './plugin.js';

const silent: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const NET = 'd'.repeat(64);
const EP1 = '1'.repeat(64);
const EP2 = '2'.repeat(64);
const network = (over: Partial<Network> = {}): Network =>
  ({
    id: 'n1000000',
    name: 'app',
    driver: 'overlay',
    subnet: '10.5.0.0/24',
    gateway: '10.5.0.1',
    ipRange: '10.5.0.0/24',
    vni: 4097,
    mtu: 0,
    parent: '',
    internal: false,
    attachable: true,
    auxAddresses: {},
    options: {},
    labels: {},
    createdAt: '',
    ...over,
  }) as Network;

describe('the Docker plugin\'s verbs', () => {
  let dir: string;
  let bindings: DockerBindings;
  let networks: Map<string, Network>;
  let endpoints: Map<string, Endpoint>;
  let created: CreateEndpointRequest[];
  let plugged: string[];
  let unplugged: string[];
  let removedNetworks: string[];
  let adopted: string[];
  let next = 2;
  const plugin = () =>
    createDockerPlugin({
      node: 'h1',
      underlayMtu: 1500,
      dnsAddr: '169.254.53.53',
      state: { networks, endpoints, nodes: new Map([['h1', { name: 'h1', addr: '192.168.9.1', routes: ['192.168.9.0/24'] }]]) } as unknown as LocalState,
      manager: {
        async createEndpoint(req) {
          if (req.ip === '10.5.0.99') throw alreadyExists('address 10.5.0.99 is already in use in network app by Docker container x on node h3; pick another or omit --ip');
          created.push(req);
          const ip = req.ip || `10.5.0.${next++}`;
          const ep: WireEndpoint = { id: `e${ip.replaceAll('.', '')}`.padEnd(32, '0'), networkId: 'n1000000', name: req.name, node: 'h1', ip, mac: req.mac || '02:42:0a:05:00:02', aliases: [], createdAt: '', container: '', origin: 'docker', ports: [] };
          return ep;
        },
        async deleteEndpoint() {
          return {};
        },
        async createNetwork() {
          throw new Error('not here');
        },
        async removeNetwork(id) {
          removedNetworks.push(id);
          return {};
        },
        async updateEndpoint() {
          throw new Error('not here');
        },
      },
      bindings,
      ready: () => true,
      waitUntil: async () => undefined,
      bridgeExists: () => true,
      plug: async (ep) => (plugged.push(ep.id), `ctdk${ep.id.slice(0, 8)}`),
      unplug: async (id) => void unplugged.push(id),
      adopt: (id) => void adopted.push(id),
      log: silent,
    });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ctnet-docker-'));
    bindings = await loadDockerBindings(join(dir, 'docker.json'));
    networks = new Map([['n1000000', network()]]);
    endpoints = new Map();
    created = [];
    plugged = [];
    unplugged = [];
    removedNetworks = [];
    adopted = [];
    next = 2;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('activates as both drivers, local in scope and global in connectivity', async () => {
    const call = plugin();
    expect(await call('Plugin.Activate', {})).toEqual({ Implements: ['NetworkDriver', 'IpamDriver'] });
    expect(await call('NetworkDriver.GetCapabilities', {})).toEqual({ Scope: 'local', ConnectivityScope: 'global' });
    expect(await call('IpamDriver.GetCapabilities', {})).toMatchObject({ RequiresMACAddress: true });
  });

  it('RequestPool refuses a subnet over a ctnet network or a host route, and picks a free one when none is given', async () => {
    const call = plugin();
    await expect(call('IpamDriver.RequestPool', { Pool: '10.5.0.0/16' })).rejects.toThrow(/overlaps 10\.5\.0\.0\/24 \(ctnet network app\)/);
    await expect(call('IpamDriver.RequestPool', { Pool: '192.168.9.128/25' })).rejects.toThrow(/a route on node h1/);
    const picked = await call('IpamDriver.RequestPool', {});
    expect(picked.Pool).toMatch(/^10\.\d+\.\d+\.0\/24$/);
    expect(picked.Pool).not.toBe('10.5.0.0/24');
    // A mirrored network: the pool is the existing network's, gateway included.
    expect(await call('IpamDriver.RequestPool', { Options: { 'ctnet.network': 'n1000000' } })).toEqual({
      PoolID: 'ctnet/10.5.0.0/24',
      Pool: '10.5.0.0/24',
      Data: { 'com.docker.network.gateway': '10.5.0.1/24' },
    });
  });

  it('claims addresses in the cluster, answering only what Docker left empty; repeated releases are fine', async () => {
    const call = plugin();
    await call('NetworkDriver.CreateNetwork', { NetworkID: NET, Options: { 'com.docker.network.generic': { 'ctnet.network': 'n1000000' } }, IPv4Data: [{ AddressSpace: 'ctnet', Pool: '10.5.0.0/24' }] });
    expect(await call('IpamDriver.RequestAddress', { PoolID: 'ctnet/10.5.0.0/24', Options: { RequestAddressType: 'com.docker.network.gateway' } })).toEqual({ Address: '10.5.0.1/24', Data: {} });
    expect(created).toHaveLength(0); // the gateway is the network's, not a claim
    const a = await call('IpamDriver.RequestAddress', { PoolID: 'ctnet/10.5.0.0/24', Options: { 'com.docker.network.endpoint.macaddress': '02:42:0a:05:00:02' } });
    expect(a.Address).toBe('10.5.0.2/24');
    expect(created[0]).toMatchObject({ node: 'h1', origin: 'docker', mac: '02:42:0a:05:00:02' });
    await expect(call('IpamDriver.RequestAddress', { PoolID: 'ctnet/10.5.0.0/24', Address: '10.5.0.99', Options: { 'com.docker.network.endpoint.macaddress': '02:42:0a:05:00:63' } })).rejects.toThrow(/Docker container x on node h3/);
    // No MAC: an --aux-address, refused at once (nothing claimed).
    await expect(call('IpamDriver.RequestAddress', { PoolID: 'ctnet/10.5.0.0/24', Address: '10.5.0.98', Options: null })).rejects.toThrow(/--aux-address/);
    expect(created).toHaveLength(1);
    // Docker gave no MAC: the one recorded is answered. It gave one: nothing may be answered.
    expect(await call('NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP1, Interface: { Address: '10.5.0.2/24' } })).toEqual({ Interface: { MacAddress: '02:42:0a:05:00:02' } });
    await expect(call('NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP2, Interface: { Address: '10.5.0.77/24' } })).rejects.toThrow(/not handed out by ctnet/);
    // Join: the veth pair, the gateway, and the resolver address routed through it once per sandbox.
    const joined = await call('NetworkDriver.Join', { NetworkID: NET, EndpointID: EP1, SandboxKey: '/var/run/docker/netns/abc' });
    expect(joined).toMatchObject({ InterfaceName: { DstPrefix: 'eth' }, Gateway: '10.5.0.1', StaticRoutes: [{ Destination: '169.254.53.53/32', RouteType: 0, NextHop: '10.5.0.1' }] });
    expect(plugged).toHaveLength(1);
    await call('NetworkDriver.Leave', { NetworkID: NET, EndpointID: EP1 });
    await call('NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: EP1 });
    await call('NetworkDriver.DeleteEndpoint', { NetworkID: NET, EndpointID: EP1 });
    expect(unplugged.length).toBeGreaterThanOrEqual(1);
    expect(await call('IpamDriver.ReleaseAddress', { PoolID: 'ctnet/10.5.0.0/24', Address: '10.5.0.2' })).toEqual({});
    expect(await call('IpamDriver.ReleaseAddress', { PoolID: 'ctnet/10.5.0.0/24', Address: '10.5.0.2' })).toEqual({});
    expect(await call('IpamDriver.ReleaseAddress', { PoolID: 'ctnet/10.5.0.0/24', Address: '10.5.0.1' })).toEqual({});
  });

  it('a second network in one sandbox gets no second route to the resolver (Docker would refuse it)', async () => {
    const call = plugin();
    networks.set('n2000000', network({ id: 'n2000000', name: 'two', subnet: '10.6.0.0/24', gateway: '10.6.0.1', internal: true }));
    const NET2 = 'e'.repeat(64);
    await call('NetworkDriver.CreateNetwork', { NetworkID: NET, Options: { 'com.docker.network.generic': { 'ctnet.network': 'n1000000' } }, IPv4Data: [{ AddressSpace: 'ctnet', Pool: '10.5.0.0/24' }] });
    await call('NetworkDriver.CreateNetwork', { NetworkID: NET2, Options: { 'com.docker.network.generic': { 'ctnet.network': 'n2000000' } }, IPv4Data: [{ AddressSpace: 'ctnet', Pool: '10.6.0.0/24' }] });
    const mac = { 'com.docker.network.endpoint.macaddress': '02:42:0a:05:00:02' };
    await call('IpamDriver.RequestAddress', { PoolID: 'ctnet/10.5.0.0/24', Options: mac });
    await call('NetworkDriver.CreateEndpoint', { NetworkID: NET, EndpointID: EP1, Interface: { Address: '10.5.0.2/24' } });
    await call('IpamDriver.RequestAddress', { PoolID: 'ctnet/10.6.0.0/24', Address: '10.6.0.5', Options: mac });
    await call('NetworkDriver.CreateEndpoint', { NetworkID: NET2, EndpointID: EP2, Interface: { Address: '10.6.0.5/24', MacAddress: '02:42:0a:05:00:02' } });
    const first = await call('NetworkDriver.Join', { NetworkID: NET, EndpointID: EP1, SandboxKey: '/x/netns/s1' });
    const second = await call('NetworkDriver.Join', { NetworkID: NET2, EndpointID: EP2, SandboxKey: '/x/netns/s1' });
    expect(first.StaticRoutes).toHaveLength(1);
    expect(second.StaticRoutes).toEqual([]);
    expect(second.Gateway).toBeUndefined(); // --internal: no default route, as Docker does
  });

  it('CreateNetwork refuses a network without ctnet\'s IPAM, and leaves the naming to adopt', async () => {
    const call = plugin();
    await expect(call('NetworkDriver.CreateNetwork', { NetworkID: NET, Options: {}, IPv4Data: [{ AddressSpace: 'LocalDefault', Pool: '10.9.0.0/24' }] })).rejects.toThrow(/--ipam-driver ctnet/);
    expect(await call('NetworkDriver.CreateNetwork', { NetworkID: NET, Options: {}, IPv4Data: [{ AddressSpace: 'ctnet', Pool: '10.9.0.0/24', Gateway: '10.9.0.254/24' }] })).toEqual({});
    expect(adopted).toEqual([NET]);
    expect(bindings.network(NET)).toMatchObject({ ctnet: '', pending: { subnet: '10.9.0.0/24', gateway: '10.9.0.254' } });
    // Deleting a pending or unknown network is fine.
    expect(await call('NetworkDriver.DeleteNetwork', { NetworkID: NET })).toEqual({});
    expect(removedNetworks).toEqual([]);
  });

  it('DeleteNetwork of a network in use elsewhere says so (the cluster keeps it); an unused one goes from the cluster', async () => {
    const call = plugin();
    await call('NetworkDriver.CreateNetwork', { NetworkID: NET, Options: { 'com.docker.network.generic': { 'ctnet.network': 'n1000000' } }, IPv4Data: [{ AddressSpace: 'ctnet', Pool: '10.5.0.0/24' }] });
    endpoints.set('n1000000/web', { id: 'x', networkId: 'n1000000', name: 'web', node: 'h3', ip: '10.5.0.7', mac: '02:42:0a:05:00:07', aliases: [], createdAt: '', container: 'c' });
    await expect(call('NetworkDriver.DeleteNetwork', { NetworkID: NET })).rejects.toThrow(/in use by 1 endpoint\(s\) in the cluster: web on h3/);
    // Docker removed its copy all the same: the binding goes; the mirror makes a new one.
    expect(bindings.network(NET)).toBeUndefined();
    const again = 'f'.repeat(64);
    await call('NetworkDriver.CreateNetwork', { NetworkID: again, Options: { 'com.docker.network.generic': { 'ctnet.network': 'n1000000' } }, IPv4Data: [{ AddressSpace: 'ctnet', Pool: '10.5.0.0/24' }] });
    endpoints.clear();
    expect(await call('NetworkDriver.DeleteNetwork', { NetworkID: again })).toEqual({});
    expect(removedNetworks).toEqual(['n1000000']);
  });
});
