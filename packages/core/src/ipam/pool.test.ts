import { describe, it, expect } from 'vitest';
import { expectInvalid } from '../testing/expect-invalid.js';
import { CtnetError, ErrorCode } from '../errors.js';
import { formatIPv4, parseIPv4 } from '../net/ipv4.js';
import type { Network } from '../model/network.js';
import {
  type AddressPlan,
  addressTaken,
  assignableCount,
  isAssignable,
  nextFreeAddress,
  parseStaticAddress,
  planAddresses,
  poolExhausted,
} from './pool.js';

const ip = (text: string) => parseIPv4(text);

function network(fields: Partial<Network> & Pick<Network, 'subnet'>): Network {
  return {
    id: 'n1',
    name: 'app',
    driver: 'overlay',
    vni: 4096,
    gateway: formatIPv4(ip(fields.subnet.split('/')[0]!) + 1),
    ipRange: fields.subnet,
    auxAddresses: {},
    attachable: false,
    internal: false,
    mtu: 0,
    parent: '',
    options: {},
    labels: {},
    createdAt: '2024-01-01T00:00:00.000Z',
    ...fields,
  };
}

/** Hands out addresses one after another as the allocator would, moving the cursor each time. */
function allocate(plan: AddressPlan, cursor: number | undefined, taken: Set<number>, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const addr = nextFreeAddress(plan, cursor, (a) => taken.has(a));
    if (addr === undefined) break;
    taken.add(addr);
    cursor = addr;
    out.push(formatIPv4(addr));
  }
  return out;
}


describe('planAddresses', () => {
  it('reserves network, broadcast, gateway and aux addresses', () => {
    const plan = planAddresses(network({ subnet: '10.0.0.0/24', auxAddresses: { r: '10.0.0.10' } }));
    expect(plan.first).toBe(ip('10.0.0.1'));
    expect(plan.last).toBe(ip('10.0.0.254'));
    expect([...plan.reserved].sort((a, b) => a - b).map(formatIPv4)).toEqual([
      '10.0.0.0',
      '10.0.0.1',
      '10.0.0.10',
      '10.0.0.255',
    ]);
    expect(isAssignable(plan, ip('10.0.0.2'))).toBe(true);
    expect(isAssignable(plan, ip('10.0.0.254'))).toBe(true);
    for (const a of ['10.0.0.0', '10.0.0.1', '10.0.0.10', '10.0.0.255', '10.0.1.1']) {
      expect(isAssignable(plan, ip(a))).toBe(false);
    }
  });

  it('limits the assignable span to the ip-range, still inside network and broadcast', () => {
    const head = planAddresses(network({ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/25' }));
    expect([head.first, head.last].map(formatIPv4)).toEqual(['10.0.0.1', '10.0.0.127']);
    const tail = planAddresses(network({ subnet: '10.0.0.0/24', ipRange: '10.0.0.128/25' }));
    expect([tail.first, tail.last].map(formatIPv4)).toEqual(['10.0.0.128', '10.0.0.254']);
  });
});

describe('assignableCount', () => {
  it('is 253 for a /24 with the gateway at .1', () => {
    expect(assignableCount(planAddresses(network({ subnet: '10.0.0.0/24' })))).toBe(253);
  });

  it('subtracts aux addresses and a gateway elsewhere in the subnet once each', () => {
    const net = network({ subnet: '10.0.0.0/24', gateway: '10.0.0.254', auxAddresses: { a: '10.0.0.1', b: '10.0.0.2' } });
    expect(assignableCount(planAddresses(net))).toBe(251);
  });

  it('counts only the ip-range, ignoring reservations outside it', () => {
    expect(assignableCount(planAddresses(network({ subnet: '10.0.0.0/24', ipRange: '10.0.0.128/25' })))).toBe(127);
    expect(assignableCount(planAddresses(network({ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/25' })))).toBe(126);
    expect(assignableCount(planAddresses(network({ subnet: '10.0.0.0/24', ipRange: '10.0.0.64/26' })))).toBe(64);
  });

  it('is 1 for a /30 and 0 for a /32 range on the broadcast address', () => {
    expect(assignableCount(planAddresses(network({ subnet: '10.0.0.0/30' })))).toBe(1);
    expect(assignableCount(planAddresses(network({ subnet: '10.0.0.0/24', ipRange: '10.0.0.255/32' })))).toBe(0);
  });
});

describe('nextFreeAddress', () => {
  const plan = planAddresses(network({ subnet: '10.0.0.0/29', auxAddresses: { r: '10.0.0.4' } }));
  // .0 network, .1 gateway, .4 aux, .7 broadcast: assignable .2 .3 .5 .6

  it('starts at the first address without a cursor and skips reserved ones', () => {
    expect(allocate(plan, undefined, new Set(), 10)).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.5', '10.0.0.6']);
  });

  it('continues after the cursor, skipping taken addresses', () => {
    const taken = new Set([ip('10.0.0.5')]);
    expect(formatIPv4(nextFreeAddress(plan, ip('10.0.0.2'), (a) => taken.has(a))!)).toBe('10.0.0.3');
    expect(formatIPv4(nextFreeAddress(plan, ip('10.0.0.3'), (a) => taken.has(a))!)).toBe('10.0.0.6');
  });

  it('wraps around after the last address', () => {
    expect(formatIPv4(nextFreeAddress(plan, ip('10.0.0.6'), () => false)!)).toBe('10.0.0.2');
    const taken = new Set([ip('10.0.0.2'), ip('10.0.0.6')]);
    expect(formatIPv4(nextFreeAddress(plan, ip('10.0.0.5'), (a) => taken.has(a))!)).toBe('10.0.0.3');
  });

  it('does not hand out a just-freed address behind the cursor while others are free', () => {
    const big = planAddresses(network({ subnet: '10.0.0.0/24' }));
    const taken = new Set<number>();
    expect(allocate(big, undefined, taken, 3)).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4']);
    taken.delete(ip('10.0.0.4')); // freed, and it is the cursor itself
    taken.delete(ip('10.0.0.3')); // freed, just behind the cursor
    expect(allocate(big, ip('10.0.0.4'), taken, 1)).toEqual(['10.0.0.5']);
  });

  it('reuses freed addresses only after wrapping', () => {
    const taken = new Set<number>();
    expect(allocate(plan, undefined, taken, 4)).toHaveLength(4);
    taken.delete(ip('10.0.0.3'));
    expect(allocate(plan, ip('10.0.0.6'), taken, 1)).toEqual(['10.0.0.3']);
  });

  it('starts at the first address when the cursor is outside the range', () => {
    expect(formatIPv4(nextFreeAddress(plan, ip('10.0.0.200'), () => false)!)).toBe('10.0.0.2');
    expect(formatIPv4(nextFreeAddress(plan, ip('9.0.0.1'), () => false)!)).toBe('10.0.0.2');
  });

  it('returns undefined when every assignable address is taken', () => {
    const taken = new Set(['10.0.0.2', '10.0.0.3', '10.0.0.5', '10.0.0.6'].map(ip));
    expect(nextFreeAddress(plan, undefined, (a) => taken.has(a))).toBeUndefined();
    expect(nextFreeAddress(plan, ip('10.0.0.3'), (a) => taken.has(a))).toBeUndefined();
  });

  it('returns undefined for an empty range without asking isTaken', () => {
    const empty = planAddresses(network({ subnet: '10.0.0.0/24', ipRange: '10.0.0.255/32' }));
    expect(nextFreeAddress(empty, undefined, () => expect.unreachable('isTaken called'))).toBeUndefined();
  });

  it('stays inside the ip-range', () => {
    const ranged = planAddresses(network({ subnet: '10.0.0.0/24', ipRange: '10.0.0.128/30' }));
    expect(allocate(ranged, undefined, new Set(), 10)).toEqual(['10.0.0.128', '10.0.0.129', '10.0.0.130', '10.0.0.131']);
  });
});

describe('parseStaticAddress', () => {
  const plan = planAddresses(
    network({ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/25', auxAddresses: { r: '10.0.0.100' } }),
  );

  it('accepts a free host address inside the range', () => {
    expect(parseStaticAddress(plan, '10.0.0.50', 'app')).toBe(ip('10.0.0.50'));
  });

  it('rejects an address outside the subnet', () => {
    expectInvalid(() => parseStaticAddress(plan, '10.0.1.5', 'app'), 'address 10.0.1.5 is outside subnet 10.0.0.0/24 of network app');
  });

  it('rejects an address outside the ip-range', () => {
    expectInvalid(
      () => parseStaticAddress(plan, '10.0.0.200', 'app'),
      'address 10.0.0.200 is outside the ip-range 10.0.0.0/25 of network app',
    );
  });

  it.each(['10.0.0.0', '10.0.0.1', '10.0.0.100'])('rejects reserved %s', (text) => {
    expectInvalid(() => parseStaticAddress(plan, text, 'app'), `address ${text} is reserved in network app`);
  });

  it('rejects the broadcast address when the range reaches it', () => {
    const full = planAddresses(network({ subnet: '10.0.0.0/24' }));
    expectInvalid(() => parseStaticAddress(full, '10.0.0.255', 'app'), 'address 10.0.0.255 is reserved');
  });

  it('rejects text that is not an address', () => {
    expectInvalid(() => parseStaticAddress(plan, '10.0.0.500', 'app'), 'requested address "10.0.0.500" is not an IPv4 address');
  });
});

describe('errors for the allocator', () => {
  it('addressTaken is ALREADY_EXISTS naming the owner', () => {
    const err = addressTaken('10.0.0.5', 'app', 'endpoint web');
    expect(err.code).toBe(ErrorCode.AlreadyExists);
    expect(err.message).toContain('address 10.0.0.5 is already in use in network app by endpoint web');
  });

  it('poolExhausted is RESOURCE_EXHAUSTED naming the range', () => {
    const err = poolExhausted('app', planAddresses(network({ subnet: '10.0.0.0/24', ipRange: '10.0.0.0/28' })));
    expect(err.code).toBe(ErrorCode.ResourceExhausted);
    expect(err.message).toContain('network app has no free address left in 10.0.0.0/28');
  });
});
