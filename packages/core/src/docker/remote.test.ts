import { describe, expect, it } from 'vitest';
import { CtnetError } from '../errors.js';
import {
  dockerErrorBody,
  parseAddressRequest,
  parseDockerBody,
  parseDockerMethod,
  parseEndpointCreate,
  parseJoin,
  parseNetworkCreate,
  parsePoolId,
  parsePoolRequest,
  parsePortMap,
  poolId,
} from './remote.js';

const NET = 'a'.repeat(64);
const EP = 'b'.repeat(64);
const message = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof CtnetError) return err.message;
    throw err;
  }
  throw new Error('expected a refusal');
};
const create = (extra: Record<string, unknown> = {}, options: Record<string, unknown> = {}) => ({
  NetworkID: NET,
  Options: { 'com.docker.network.enable_ipv6': false, 'com.docker.network.generic': {}, ...options },
  IPv4Data: [{ AddressSpace: 'ctnet', Pool: '10.1.0.0/24', Gateway: '10.1.0.1/24', AuxAddresses: {} }],
  IPv6Data: [],
  ...extra,
});

describe('Docker remote driver protocol', () => {
  it('knows the methods dockerd calls, and no others', () => {
    expect(parseDockerMethod('/Plugin.Activate')).toBe('Plugin.Activate');
    expect(parseDockerMethod('/NetworkDriver.Join')).toBe('NetworkDriver.Join');
    expect(parseDockerMethod('/IpamDriver.RequestAddress')).toBe('IpamDriver.RequestAddress');
    expect(parseDockerMethod('/NetworkDriver.Nope')).toBeUndefined();
    expect(parseDockerMethod('/../etc/passwd')).toBeUndefined();
  });

  it('answers errors in the field each API reads: Err for the network driver, Error for IPAM', () => {
    expect(dockerErrorBody('NetworkDriver.Join', 'x')).toEqual({ Err: 'x' });
    expect(dockerErrorBody('IpamDriver.RequestPool', 'x')).toEqual({ Error: 'x' });
    expect(dockerErrorBody(undefined, 'x')).toEqual({ Err: 'x' });
  });

  it('refuses a body that is not a JSON object, naming the problem; an empty body is no arguments', () => {
    expect(parseDockerBody('')).toEqual({});
    expect(message(() => parseDockerBody('{"NetworkID": "ab'))).toMatch(/not JSON/);
    expect(message(() => parseDockerBody('[1,2]'))).toMatch(/JSON object/);
  });

  it('reads CreateNetwork: one IPv4 pool, the gateway, --internal and the -o options it knows', () => {
    const c = parseNetworkCreate(create({}, { 'com.docker.network.internal': true, 'com.docker.network.generic': { mtu: '1400' } }));
    expect(c).toMatchObject({ networkId: NET, gateway: '10.1.0.1', internal: true, options: { mtu: '1400' }, ctnetNetwork: '', addressSpace: 'ctnet' });
    expect(parseNetworkCreate(create({}, { 'com.docker.network.generic': { 'ctnet.network': 'n1' } })).ctnetNetwork).toBe('n1');
  });

  it('refuses unknown options (listing them), IPv6, and anything but one IPv4 pool', () => {
    expect(message(() => parseNetworkCreate(create({}, { 'com.docker.network.generic': { color: 'blue', size: '3' } })))).toMatch(/unknown options "color", "size".*-o mtu=N/);
    expect(message(() => parseNetworkCreate(create({}, { 'com.docker.network.enable_ipv6': true })))).toMatch(/IPv4 only/);
    expect(message(() => parseNetworkCreate(create({ IPv4Data: [] })))).toMatch(/exactly one IPv4 subnet/);
    expect(message(() => parseNetworkCreate(create({ NetworkID: 'zz' })))).toMatch(/not a Docker id/);
    expect(message(() => parseNetworkCreate(create({ IPv4Data: [{ AddressSpace: 'ctnet', Pool: '10.1.0.0/24', AuxAddresses: { router: '10.1.0.5/24' } }] })))).toMatch(/--aux-address.*ctmgr network create/);
  });

  it('names pools by their subnet, and refuses pools that are not ctnet\'s', () => {
    const p = parsePoolRequest({ AddressSpace: 'ctnet', Pool: '10.2.0.0/16', SubPool: '', Options: { a: 'b' }, V6: false });
    expect(p).toMatchObject({ options: { a: 'b' }, v6: false });
    expect(poolId(p.subnet!)).toBe('ctnet/10.2.0.0/16');
    expect(parsePoolId({ PoolID: 'ctnet/10.2.0.0/16' })).toEqual(p.subnet);
    expect(message(() => parsePoolId({ PoolID: 'LocalDefault/10.2.0.0/16' }))).toMatch(/not one of ctnet's/);
  });

  it('reads RequestAddress: the gateway request, a fixed address and the MAC Docker passes', () => {
    expect(parseAddressRequest({ PoolID: 'ctnet/10.2.0.0/16', Address: '', Options: { RequestAddressType: 'com.docker.network.gateway' } })).toMatchObject({ gateway: true, address: '' });
    expect(parseAddressRequest({ PoolID: 'ctnet/10.2.0.0/16', Address: '10.2.0.9', Options: { 'com.docker.network.endpoint.macaddress': '02:42:AA:bb:cc:dd' } })).toMatchObject({
      gateway: false,
      address: '10.2.0.9',
      mac: '02:42:aa:bb:cc:dd',
    });
    expect(message(() => parseAddressRequest({ PoolID: 'ctnet/10.2.0.0/16', Address: '10.2.0.999' }))).toMatch(/10\.2\.0\.999/);
  });

  it('reads CreateEndpoint and Join', () => {
    expect(parseEndpointCreate({ NetworkID: NET, EndpointID: EP, Interface: { Address: '10.2.0.9/16', MacAddress: '' } })).toEqual({ networkId: NET, endpointId: EP, address: '10.2.0.9', mac: '' });
    expect(message(() => parseEndpointCreate({ NetworkID: NET, EndpointID: EP, Interface: { AddressIPv6: 'fe80::1/64' } }))).toMatch(/IPv4 only/);
    expect(parseJoin({ NetworkID: NET, EndpointID: EP, SandboxKey: '/var/run/docker/netns/abc', Options: {} }).sandboxKey).toBe('/var/run/docker/netns/abc');
    expect(message(() => parseJoin({ NetworkID: NET, EndpointID: EP, SandboxKey: 'netns/abc' }))).toMatch(/absolute/);
  });

  it('reads -p as Docker passes it: tcp and udp, a host port 0 left to us, no ranges', () => {
    const ports = parsePortMap({
      'com.docker.network.portmap': [
        { Proto: 6, IP: '', Port: 80, HostIP: '', HostPort: 8080, HostPortEnd: 8080 },
        { Proto: 17, IP: '', Port: 53, HostIP: '0.0.0.0', HostPort: 0, HostPortEnd: 0 },
        { Proto: 6, IP: '', Port: 443, HostIP: '192.168.1.5', HostPort: 8443, HostPortEnd: 8443 },
      ],
    });
    expect(ports).toEqual([
      { protocol: 'tcp', containerPort: 80, hostIp: '', hostPort: 8080 },
      { protocol: 'udp', containerPort: 53, hostIp: '', hostPort: 0 },
      { protocol: 'tcp', containerPort: 443, hostIp: '192.168.1.5', hostPort: 8443 },
    ]);
    expect(parsePortMap({})).toEqual([]);
    expect(message(() => parsePortMap({ 'com.docker.network.portmap': [{ Proto: 132, Port: 80, HostPort: 80 }] }))).toMatch(/tcp or udp/);
    expect(message(() => parsePortMap({ 'com.docker.network.portmap': [{ Proto: 6, Port: 80, HostPort: 8000, HostPortEnd: 8010 }] }))).toMatch(/ranges/);
  });
});
