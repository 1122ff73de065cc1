import { describe, it, expect } from 'vitest';
import { expectInvalid } from '../testing/expect-invalid.js';
import { CtnetError, ErrorCode } from '../errors.js';
import { parseCidr, parseIPv4 } from '../net/ipv4.js';
import { type NetworkRequest, buildNetwork, parseNetworkRequest } from './network.js';


const ip = (text: string) => parseIPv4(text);

describe('parseNetworkRequest: good input', () => {
  it('defaults to an overlay network with nothing chosen yet', () => {
    expect(parseNetworkRequest({ name: 'app' })).toEqual({
      name: 'app',
      driver: 'overlay',
      auxAddresses: {},
      attachable: false,
      internal: false,
      mtu: 0,
      parent: '',
      options: {},
      labels: {},
      node: '',
    });
  });

  it('parses a full overlay request into a spec', () => {
    const spec = parseNetworkRequest({
      name: ' backend ',
      driver: 'overlay',
      subnet: '10.20.0.0/16',
      gateway: '10.20.0.254',
      ipRange: '10.20.1.0/24',
      auxAddresses: { router: '10.20.0.2', printer: '10.20.9.9' },
      attachable: true,
      internal: true,
      options: { mtu: '1450', vni: '5000' },
      labels: { team: 'web' },
    });
    expect(spec).toEqual({
      name: 'backend',
      driver: 'overlay',
      subnet: { base: ip('10.20.0.0'), prefix: 16 },
      gateway: ip('10.20.0.254'),
      ipRange: { base: ip('10.20.1.0'), prefix: 24 },
      auxAddresses: { router: ip('10.20.0.2'), printer: ip('10.20.9.9') },
      attachable: true,
      internal: true,
      mtu: 1450,
      vni: 5000,
      parent: '',
      options: { mtu: '1450', vni: '5000' },
      labels: { team: 'web' },
      node: '',
    });
  });

  it('accepts the Docker option names and stores them under the short names', () => {
    const spec = parseNetworkRequest({
      name: 'app',
      options: { 'com.docker.network.driver.mtu': '1400', 'com.docker.network.driver.overlay.vxlanid_list': '4200' },
    });
    expect(spec.mtu).toBe(1400);
    expect(spec.vni).toBe(4200);
    expect(spec.options).toEqual({ mtu: '1400', vni: '4200' });
  });

  it('accepts a macvlan network with parent and subnet', () => {
    const spec = parseNetworkRequest({
      name: 'lan',
      driver: 'macvlan',
      subnet: '192.168.1.0/24',
      gateway: '192.168.1.1',
      options: { parent: 'eth0.100' },
    });
    expect(spec).toMatchObject({ driver: 'macvlan', parent: 'eth0.100', gateway: ip('192.168.1.1') });
    expect(spec.vni).toBeUndefined();
  });

  it('accepts a /30, the smallest subnet with room for a gateway and a host', () => {
    expect(parseNetworkRequest({ name: 'p2p', driver: 'bridge', subnet: '10.9.9.0/30' }).subnet).toEqual(
      parseCidr('10.9.9.0/30'),
    );
  });

  it('accepts the VNI and MTU bounds', () => {
    expect(parseNetworkRequest({ name: 'a', options: { vni: '1' } }).vni).toBe(1);
    expect(parseNetworkRequest({ name: 'a', options: { vni: '16777215' } }).vni).toBe(16_777_215);
    expect(parseNetworkRequest({ name: 'a', options: { mtu: '68' } }).mtu).toBe(68);
    expect(parseNetworkRequest({ name: 'a', options: { mtu: '65535' } }).mtu).toBe(65535);
  });

  it('copies labels rather than keeping the caller’s object', () => {
    const labels = { a: '1' };
    const spec = parseNetworkRequest({ name: 'app', labels });
    labels.a = '2';
    expect(spec.labels).toEqual({ a: '1' });
  });
});

describe('parseNetworkRequest: bad input', () => {
  const sub = { subnet: '10.0.0.0/24' };
  const cases: [string, NetworkRequest, string | RegExp][] = [
    ['invalid CIDR', { name: 'n', subnet: '10.0.0/24' }, /is not an IPv4 address/],
    ['CIDR with host bits', { name: 'n', subnet: '10.0.0.1/24' }, 'did you mean 10.0.0.0/24?'],
    ['IPv6 subnet', { name: 'n', subnet: 'fd00::/64' }, /IPv6/],
    ['/31 subnet', { name: 'n', subnet: '10.0.0.0/31' }, /subnet 10\.0\.0\.0\/31 is a \/31: .*use \/30 or larger/],
    ['/32 subnet', { name: 'n', subnet: '10.0.0.1/32' }, /is a \/32: it leaves no room/],
    ['gateway outside subnet', { name: 'n', ...sub, gateway: '10.0.1.1' }, 'gateway 10.0.1.1 is outside subnet 10.0.0.0/24'],
    ['gateway = network address', { name: 'n', ...sub, gateway: '10.0.0.0' }, "gateway 10.0.0.0 is the subnet's network address"],
    ['gateway = broadcast', { name: 'n', ...sub, gateway: '10.0.0.255' }, "gateway 10.0.0.255 is the subnet's broadcast address"],
    ['gateway not an address', { name: 'n', ...sub, gateway: '10.0.0' }, /gateway "10\.0\.0" is not an IPv4 address/],
    ['ip-range outside subnet', { name: 'n', ...sub, ipRange: '10.0.1.0/25' }, 'ip-range 10.0.1.0/25 is not inside subnet 10.0.0.0/24'],
    ['ip-range larger than subnet', { name: 'n', ...sub, ipRange: '10.0.0.0/23' }, /is not inside subnet/],
    ['ip-range with host bits', { name: 'n', ...sub, ipRange: '10.0.0.130/25' }, /ip-range .* did you mean 10\.0\.0\.128\/25\?/],
    ['gateway without subnet', { name: 'n', gateway: '10.0.0.1' }, '--gateway needs --subnet'],
    ['ip-range without subnet', { name: 'n', ipRange: '10.0.0.0/25' }, '--ip-range needs --subnet'],
    ['aux without subnet', { name: 'n', auxAddresses: { r: '10.0.0.2' } }, '--aux-address needs --subnet'],
    ['aux equal to gateway', { name: 'n', ...sub, gateway: '10.0.0.1', auxAddresses: { r: '10.0.0.1' } }, 'aux-address r=10.0.0.1 is the gateway'],
    ['aux outside subnet', { name: 'n', ...sub, auxAddresses: { r: '10.0.5.1' } }, 'aux-address r=10.0.5.1 is outside subnet 10.0.0.0/24'],
    ['aux = broadcast', { name: 'n', ...sub, auxAddresses: { r: '10.0.0.255' } }, /aux-address r=10\.0\.0\.255 is the subnet's broadcast/],
    ['aux without a name', { name: 'n', ...sub, auxAddresses: { '': '10.0.0.9' } }, 'aux-address "=10.0.0.9" has no name'],
    ['name with underscore', { name: 'my_net' }, 'network name "my_net" is not a valid DNS label'],
    ['name with leading hyphen', { name: '-net' }, 'network name "-net" is not a valid DNS label'],
    ['name of 64 characters', { name: 'a'.repeat(64) }, /network name "a{64}" is not a valid DNS label/],
    ['empty name', { name: '' }, 'network name is empty'],
    ['unknown driver', { name: 'n', driver: 'ipvlan' }, 'unknown driver "ipvlan"; use one of overlay, bridge, macvlan'],
    ['driver in the wrong case', { name: 'n', driver: 'Overlay' }, 'unknown driver "Overlay"'],
    ['unknown option', { name: 'n', options: { encrypted: 'true' } }, 'unknown option "encrypted"'],
    ['vni 0', { name: 'n', options: { vni: '0' } }, 'option vni "0" is out of range; use a whole number from 1 to 16777215'],
    ['vni 2^24', { name: 'n', options: { vni: '16777216' } }, 'option vni "16777216" is out of range'],
    ['vni not a number', { name: 'n', options: { vni: '12a' } }, 'option vni "12a" is out of range'],
    ['negative vni', { name: 'n', options: { vni: '-5' } }, 'option vni "-5" is out of range'],
    ['vni on bridge', { name: 'n', driver: 'bridge', options: { vni: '5000' } }, 'option vni applies to overlay networks only, not bridge'],
    ['vni on macvlan', { name: 'n', driver: 'macvlan', ...sub, options: { vni: '5000', parent: 'eth0' } }, /option vni applies to overlay networks only/],
    ['macvlan without parent', { name: 'n', driver: 'macvlan', ...sub }, 'a macvlan network needs its parent interface'],
    ['macvlan without subnet', { name: 'n', driver: 'macvlan', options: { parent: 'eth0' } }, 'a macvlan network shares the host segment'],
    ['parent on overlay', { name: 'n', options: { parent: 'eth0' } }, 'option parent applies to macvlan networks only, not overlay'],
    ['parent too long', { name: 'n', driver: 'macvlan', ...sub, options: { parent: 'a'.repeat(16) } }, /is not a valid interface name/],
    ['mtu 67', { name: 'n', options: { mtu: '67' } }, 'option mtu "67" is out of range; use a whole number from 68 to 65535'],
    ['mtu 65536', { name: 'n', options: { mtu: '65536' } }, 'option mtu "65536" is out of range'],
    ['mtu via Docker alias out of range', { name: 'n', options: { 'com.docker.network.driver.mtu': '9' } }, 'option mtu "9" is out of range'],
    ['mtu with a fraction', { name: 'n', options: { mtu: '1500.5' } }, 'option mtu "1500.5" is out of range'],
  ];

  it.each(cases)('%s', (_label, req, message) => {
    expectInvalid(() => parseNetworkRequest(req), message);
  });
});

describe('buildNetwork', () => {
  const chosen = { id: 'n1', subnet: parseCidr('10.0.3.0/24'), vni: 4097, createdAt: '2024-01-01T00:00:00.000Z' };

  it('defaults the gateway to the first host and the ip-range to the subnet', () => {
    const net = buildNetwork(parseNetworkRequest({ name: 'app', labels: { x: 'y' } }), chosen);
    expect(net).toEqual({
      id: 'n1',
      name: 'app',
      driver: 'overlay',
      vni: 4097,
      subnet: '10.0.3.0/24',
      gateway: '10.0.3.1',
      ipRange: '10.0.3.0/24',
      auxAddresses: {},
      attachable: false,
      internal: false,
      mtu: 0,
      parent: '',
      options: {},
      labels: { x: 'y' },
      createdAt: '2024-01-01T00:00:00.000Z',
    });
  });

  it('keeps an explicit gateway, ip-range and aux addresses, formatted', () => {
    const spec = parseNetworkRequest({
      name: 'app',
      subnet: '10.0.3.0/24',
      gateway: '10.0.3.254',
      ipRange: '10.0.3.128/25',
      auxAddresses: { router: '10.0.3.1' },
    });
    const net = buildNetwork(spec, chosen);
    expect(net.gateway).toBe('10.0.3.254');
    expect(net.ipRange).toBe('10.0.3.128/25');
    expect(net.auxAddresses).toEqual({ router: '10.0.3.1' });
  });

  it.each(['bridge', 'macvlan'])('zeroes the VNI of a %s network', (driver) => {
    const spec = parseNetworkRequest({
      name: 'app',
      driver,
      subnet: '10.0.3.0/24',
      ...(driver === 'macvlan' && { options: { parent: 'eth0' } }),
    });
    expect(buildNetwork(spec, chosen).vni).toBe(0);
  });

  it('rejects an aux address equal to the default gateway', () => {
    const spec = parseNetworkRequest({ name: 'app', subnet: '10.0.3.0/24', auxAddresses: { router: '10.0.3.1' } });
    expectInvalid(() => buildNetwork(spec, chosen), 'aux-address router is the default gateway 10.0.3.1; set --gateway');
  });
});
