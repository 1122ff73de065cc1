import { describe, it, expect } from 'vitest';
import { CtnetError, ErrorCode } from '../errors.js';
import { type Cidr, formatCidr, parseCidr } from '../net/ipv4.js';
import { type Occupied, checkSubnetFree, findOverlap, pickSubnet, pickVni } from './subnets.js';

const cidr = (text: string) => parseCidr(text);
const occ = (text: string, what = 'network x'): Occupied => ({ cidr: cidr(text), what });
const pick = (pools: string[], size: number, occupied: Occupied[]) => formatCidr(pickSubnet(pools.map(cidr), size, occupied));

function caught(fn: () => unknown): CtnetError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CtnetError) return err;
    throw err;
  }
  throw new Error('expected a CtnetError, but nothing was thrown');
}

/**
 * An occupied range that counts how often the search looks at it, and stops the search
 * (instead of letting a linear scan of a huge pool hang the test) past a budget.
 */
function counted(text: string, budget: { reads: number; max: number }): Occupied {
  const value: Cidr = cidr(text);
  return {
    what: `range ${text}`,
    get cidr() {
      if (++budget.reads > budget.max) throw new Error(`search looked at occupied ranges more than ${budget.max} times`);
      return value;
    },
  };
}

describe('pickSubnet', () => {
  it('picks the first /24 of 10.0.0.0/8 when nothing is occupied', () => {
    expect(pick(['10.0.0.0/8'], 24, [])).toBe('10.0.0.0/24');
  });

  it('skips occupied networks', () => {
    expect(pick(['10.0.0.0/8'], 24, [occ('10.0.0.0/24'), occ('10.0.1.0/24')])).toBe('10.0.2.0/24');
  });

  it('skips a block that is only partly occupied', () => {
    expect(pick(['10.0.0.0/8'], 24, [occ('10.0.0.128/25')])).toBe('10.0.1.0/24');
    expect(pick(['10.0.0.0/8'], 24, [occ('10.0.0.77/32', 'route on node h1')])).toBe('10.0.1.0/24');
  });

  it('skips excluded ranges and host routes together', () => {
    const occupied = [occ('10.0.0.0/16', 'excluded range'), occ('10.1.0.0/24', 'route on node h1'), occ('10.1.1.0/24')];
    expect(pick(['10.0.0.0/8'], 24, occupied)).toBe('10.1.2.0/24');
  });

  it('finds a gap between occupied ranges given in any order', () => {
    expect(pick(['10.0.0.0/8'], 24, [occ('10.0.2.0/24'), occ('10.0.0.0/23')])).toBe('10.0.3.0/24');
  });

  it('jumps past a large occupied range: 10.0.0.0/9 leaves 10.128.0.0/24', () => {
    expect(pick(['10.0.0.0/8'], 24, [occ('10.0.0.0/9')])).toBe('10.128.0.0/24');
  });

  it('jumps past large ranges in few steps rather than scanning block by block', () => {
    const budget = { reads: 0, max: 100 };
    const occupied = [counted('0.0.0.0/1', budget), counted('128.0.0.0/2', budget), counted('192.0.0.0/3', budget)];
    expect(formatCidr(pickSubnet([cidr('0.0.0.0/0')], 30, occupied))).toBe('224.0.0.0/30');
    expect(budget.reads).toBeLessThanOrEqual(20); // a block-by-block scan would need ~10^9 steps
  });

  it('honours pool sizes other than /24', () => {
    expect(pick(['172.16.0.0/12'], 20, [occ('172.16.0.0/24')])).toBe('172.16.16.0/20');
  });

  it('falls through to the next pool when the first is full', () => {
    expect(pick(['10.0.0.0/23', '192.168.0.0/16'], 24, [occ('10.0.0.0/23')])).toBe('192.168.0.0/24');
  });

  it('skips a pool smaller than the requested size', () => {
    expect(pick(['10.0.0.0/26', '192.168.0.0/16'], 24, [])).toBe('192.168.0.0/24');
  });

  it('uses the last block of a pool', () => {
    expect(pick(['10.0.0.0/23'], 24, [occ('10.0.0.0/24')])).toBe('10.0.1.0/24');
  });

  it('throws RESOURCE_EXHAUSTED naming the pools when nothing fits', () => {
    const err = caught(() => pickSubnet([cidr('10.0.0.0/23'), cidr('10.9.0.0/24')], 24, [occ('10.0.0.0/8')]));
    expect(err.code).toBe(ErrorCode.ResourceExhausted);
    expect(err.message).toContain('no free /24 left in the default address pools (10.0.0.0/23, 10.9.0.0/24)');
  });

  it('throws RESOURCE_EXHAUSTED when the only pool is too small', () => {
    expect(caught(() => pickSubnet([cidr('10.0.0.0/26')], 24, [])).code).toBe(ErrorCode.ResourceExhausted);
  });
});

describe('findOverlap / checkSubnetFree', () => {
  const occupied = [occ('10.0.0.0/24', 'network app'), occ('192.168.0.0/16', 'route on node h1')];

  it('finds the clashing range', () => {
    expect(findOverlap(cidr('192.168.4.0/24'), occupied)?.what).toBe('route on node h1');
    expect(findOverlap(cidr('10.0.1.0/24'), occupied)).toBeUndefined();
  });

  it('passes a free subnet', () => {
    expect(() => checkSubnetFree(cidr('10.0.1.0/24'), occupied)).not.toThrow();
  });

  it('names the clash', () => {
    const err = caught(() => checkSubnetFree(cidr('10.0.0.0/16'), occupied));
    expect(err.code).toBe(ErrorCode.AlreadyExists);
    expect(err.message).toContain('subnet 10.0.0.0/16 overlaps 10.0.0.0/24 (network app)');
    expect(caught(() => checkSubnetFree(cidr('192.168.1.0/24'), occupied)).message).toContain(
      'overlaps 192.168.0.0/16 (route on node h1)',
    );
  });
});

describe('pickVni', () => {
  it('starts at 4096', () => {
    expect(pickVni(new Set())).toBe(4096);
    expect(pickVni(new Set([1, 100, 4095]))).toBe(4096);
  });

  it('skips taken VNIs', () => {
    expect(pickVni(new Set([4096, 4097, 4099]))).toBe(4098);
  });
});
