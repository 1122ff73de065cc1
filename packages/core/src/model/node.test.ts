import { describe, it, expect } from 'vitest';
import { expectInvalid } from '../testing/expect-invalid.js';
import { CtnetError, ErrorCode } from '../errors.js';
import { MAX_NODE_ROUTES, parseNodeRegistration } from './node.js';

const AT = '2024-01-01T00:00:00.000Z';


describe('parseNodeRegistration', () => {
  it('builds a node, defaulting the hostname to the name', () => {
    expect(parseNodeRegistration({ name: 'h1', addr: ' 192.168.0.11 ', labels: { zone: 'a' } }, AT)).toEqual({
      name: 'h1',
      addr: '192.168.0.11',
      hostname: 'h1',
      labels: { zone: 'a' },
      routes: [],
      registeredAt: AT,
    });
  });

  it('keeps a given hostname, trimmed', () => {
    expect(parseNodeRegistration({ name: 'h1', addr: '192.168.0.11', hostname: ' host-1.lab ' }, AT).hostname).toBe(
      'host-1.lab',
    );
  });

  it('drops the default route, masks host bits, deduplicates and sorts', () => {
    const node = parseNodeRegistration(
      {
        name: 'h1',
        addr: '192.168.0.11',
        routes: ['192.168.0.11/24', '0.0.0.0/0', '172.17.0.1/16', '192.168.0.0/24', '10.1.2.3/0', '172.17.0.0/16'],
      },
      AT,
    );
    expect(node.routes).toEqual(['172.17.0.0/16', '192.168.0.0/24']);
  });

  it('keeps host routes', () => {
    expect(parseNodeRegistration({ name: 'h1', addr: '192.168.0.11', routes: ['10.9.9.9/32'] }, AT).routes).toEqual([
      '10.9.9.9/32',
    ]);
  });

  it.each(['192.168.0', 'fe80::1', 'h1.lab', ''])('rejects advertise address %j', (addr) => {
    expectInvalid(() => parseNodeRegistration({ name: 'h1', addr }, AT), /advertise address of node h1/);
  });

  it('accepts the forms ip -j route prints: "default" (dropped) and bare host addresses (/32)', () => {
    const node = parseNodeRegistration({ name: 'h1', addr: '192.168.0.1', routes: ['default', '10.0.0.5'] }, 't');
    expect(node.routes).toEqual(['10.0.0.5/32']);
  });

  it.each(['10.0.0', 'fe80::/64', '10.0.0.0/33', 'nonsense'])('rejects route %j, naming the node', (route) => {
    expectInvalid(
      () => parseNodeRegistration({ name: 'h1', addr: '192.168.0.11', routes: [route] }, AT),
      `node h1 reported route "${route}" that is not an IPv4 CIDR`,
    );
  });

  it('rejects a node name that is not a DNS label', () => {
    expectInvalid(() => parseNodeRegistration({ name: 'h_1', addr: '192.168.0.11' }, AT), 'node name "h_1"');
  });
});

describe('routes a node reports', () => {
  const reg = (routes: string[]) => parseNodeRegistration({ name: 'h1', addr: '192.168.1.1', routes }, 'now');
  it('regression: 0.0.0.0/1 + 128.0.0.0/1 from one Hello blocked all automatic subnet choice; prefixes shorter than /8 are ignored', () => {
    expect(reg(['0.0.0.0/1', '128.0.0.0/1', '10.0.0.0/7', '10.0.0.0/8', 'default']).routes).toEqual(['10.0.0.0/8']);
  });
  it('keeps at most MAX_NODE_ROUTES routes', () => {
    const many = Array.from({ length: 1000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    expect(reg(many).routes).toHaveLength(MAX_NODE_ROUTES);
  });
});
