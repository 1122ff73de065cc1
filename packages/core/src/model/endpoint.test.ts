import { describe, it, expect } from 'vitest';
import { expectInvalid } from '../testing/expect-invalid.js';
import { CtnetError, ErrorCode } from '../errors.js';
import { parseIPv4 } from '../net/ipv4.js';
import { macForIPv4, parseEndpointRequest, parseMac } from './endpoint.js';


describe('macForIPv4', () => {
  it.each([
    ['10.0.0.2', '02:42:0a:00:00:02'],
    ['172.17.0.3', '02:42:ac:11:00:03'],
    ['255.255.255.254', '02:42:ff:ff:ff:fe'],
  ])('%s -> %s', (addr, mac) => {
    expect(macForIPv4(parseIPv4(addr))).toBe(mac);
  });

  it('gives a MAC that parseMac accepts unchanged', () => {
    const mac = macForIPv4(parseIPv4('192.168.10.20'));
    expect(parseMac(mac)).toBe(mac);
  });
});

describe('parseMac', () => {
  it('normalises case and dashes', () => {
    expect(parseMac('02:42:AC:11:00:02')).toBe('02:42:ac:11:00:02');
    expect(parseMac(' 02-42-ac-11-00-02 ')).toBe('02:42:ac:11:00:02');
  });

  it.each(['02:42:ac:11:00', '02:42:ac:11:00:02:03', '0242ac110002', '02:42:ac:11:00:zz', '2:42:ac:11:0:2', ''])(
    'rejects malformed %j',
    (text) => {
      expectInvalid(() => parseMac(text), /is malformed; write six hex pairs/);
    },
  );

  it.each(['01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff', '03:42:ac:11:00:02'])('rejects multicast %s', (text) => {
    expectInvalid(() => parseMac(text), /is a multicast address; the first byte must be even/);
  });

  it('rejects the all-zero MAC', () => {
    expectInvalid(() => parseMac('00:00:00:00:00:00'), 'MAC address 00:00:00:00:00:00 is not usable');
  });
});

describe('parseEndpointRequest', () => {
  it('parses names, deduplicates aliases and normalises the MAC', () => {
    expect(
      parseEndpointRequest({
        network: ' app ',
        node: 'h1',
        name: 'web',
        aliases: ['www', 'api', 'www'],
        ip: ' 10.0.0.9 ',
        mac: '02-42-0A-00-00-09',
      }),
    ).toEqual({ network: 'app', node: 'h1', name: 'web', aliases: ['www', 'api'], ip: '10.0.0.9', mac: '02:42:0a:00:00:09' });
  });

  it('leaves out blank ip and mac', () => {
    const spec = parseEndpointRequest({ network: 'app', node: 'h1', name: 'web', ip: ' ', mac: '' });
    expect(spec).toEqual({ network: 'app', node: 'h1', name: 'web', aliases: [] });
  });

  it('rejects a missing network, and bad node, endpoint and alias names', () => {
    expectInvalid(() => parseEndpointRequest({ network: ' ', node: 'h1', name: 'web' }), 'no network given');
    expectInvalid(() => parseEndpointRequest({ network: 'app', node: 'h_1', name: 'web' }), 'node name "h_1"');
    expectInvalid(() => parseEndpointRequest({ network: 'app', node: 'h1', name: 'web.1' }), 'endpoint name "web.1"');
    expectInvalid(() => parseEndpointRequest({ network: 'app', node: 'h1', name: 'web', aliases: ['-x'] }), 'alias name "-x"');
  });
});
