import { describe, it, expect } from 'vitest';
import { expectInvalid } from '../testing/expect-invalid.js';
import { CtnetError, ErrorCode } from '../errors.js';
import {
  cidrContains,
  cidrContainsCidr,
  cidrLast,
  cidrOverlaps,
  cidrSize,
  formatCidr,
  formatIPv4,
  maskOf,
  parseCidr,
  parseIPv4,
  tryParseIPv4,
} from './ipv4.js';


const cidr = (text: string) => parseCidr(text);

describe('parseIPv4 / formatIPv4', () => {
  it.each([
    ['0.0.0.0', 0],
    ['10.0.0.5', 0x0a000005],
    ['192.168.1.254', 0xc0a801fe],
    ['255.255.255.255', 0xffffffff],
  ])('parses %s as %d and formats it back', (text, value) => {
    expect(parseIPv4(text)).toBe(value);
    expect(formatIPv4(value)).toBe(text);
  });

  it('returns unsigned numbers for addresses with the top bit set', () => {
    expect(parseIPv4('128.0.0.1')).toBe(2 ** 31 + 1);
    expect(formatIPv4(parseIPv4('200.1.2.3'))).toBe('200.1.2.3');
  });

  it('trims surrounding whitespace', () => {
    expect(parseIPv4(' 10.0.0.1\n')).toBe(0x0a000001);
  });

  it.each(['010.0.0.1', '10.0.0.01', '10.00.0.1'])('rejects leading zeros in %s', (text) => {
    expect(tryParseIPv4(text)).toBeUndefined();
    expectInvalid(() => parseIPv4(text), /is not an IPv4 address/);
  });

  it.each(['256.0.0.1', '10.0.0.256', '10.0.1000.1'])('rejects out-of-range octet in %s', (text) => {
    expectInvalid(() => parseIPv4(text), /four numbers 0-255/);
  });

  it.each(['10.0.1', '10.0.0.0.1', '10', '', '1..2.3', '10.0.0.-1', '10.0.0.x', '+1.2.3.4', '10.0.0.1/24'])(
    'rejects malformed %j',
    (text) => {
      expect(tryParseIPv4(text)).toBeUndefined();
      expectInvalid(() => parseIPv4(text), /is not an IPv4 address/);
    },
  );

  it.each(['::1', 'fe80::1', '2001:db8::5'])('rejects IPv6 %s with a message saying so', (text) => {
    expectInvalid(() => parseIPv4(text, 'gateway'), `gateway "${text}" is IPv6; ctnet supports IPv4 only`);
  });
});

describe('maskOf', () => {
  it.each([
    [0, 0],
    [1, 0x80000000],
    [8, 0xff000000],
    [24, 0xffffff00],
    [31, 0xfffffffe],
    [32, 0xffffffff],
  ])('/%d is %d', (prefix, mask) => {
    expect(maskOf(prefix)).toBe(mask);
  });
});

describe('parseCidr / formatCidr', () => {
  it.each(['10.0.0.0/24', '10.0.0.0/8', '192.168.4.128/25', '10.0.0.5/32', '0.0.0.0/0', '255.255.255.252/30'])(
    'round-trips %s',
    (text) => {
      expect(formatCidr(parseCidr(text))).toBe(text);
    },
  );

  it('parses into base and prefix', () => {
    expect(parseCidr('172.16.0.0/12')).toEqual({ base: 0xac100000, prefix: 12 });
  });

  it('rejects host bits in strict mode and suggests the network', () => {
    expectInvalid(() => parseCidr('10.0.0.5/24'), 'subnet "10.0.0.5/24" has host bits set; did you mean 10.0.0.0/24?');
    expectInvalid(() => parseCidr('192.168.1.130/25', 'ip-range'), /ip-range .* did you mean 192\.168\.1\.128\/25\?/);
    expectInvalid(() => parseCidr('10.1.2.3/0'), /did you mean 0\.0\.0\.0\/0\?/);
  });

  it('masks host bits when not strict', () => {
    expect(parseCidr('10.0.0.5/24', 'route', false)).toEqual(cidr('10.0.0.0/24'));
    expect(parseCidr('200.1.2.3/1', 'route', false)).toEqual({ base: 0x80000000, prefix: 1 });
  });

  it.each(['10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/x', '10.0.0.0/100', '10.0.0.0/24/24', '10.0.0.0/2.5'])(
    'rejects prefix in %s',
    (text) => {
      expectInvalid(() => parseCidr(text), /has prefix length .*use a number from 0 to 32/);
    },
  );

  it('rejects text without a slash', () => {
    expectInvalid(() => parseCidr('10.0.0.0'), /is not a CIDR; write it as address\/prefix/);
  });

  it('rejects a bad address part, naming IPv6 when it is IPv6', () => {
    expectInvalid(() => parseCidr('10.0.0/24'), /is not an IPv4 address/);
    expectInvalid(() => parseCidr('fd00::/64'), /is IPv6/);
  });
});

describe('cidrSize / cidrLast', () => {
  it('computes size and last address, including /0 and /32', () => {
    expect(cidrSize(cidr('10.0.0.0/24'))).toBe(256);
    expect(formatIPv4(cidrLast(cidr('10.0.0.0/24')))).toBe('10.0.0.255');
    expect(cidrSize(cidr('10.0.0.7/32'))).toBe(1);
    expect(cidrLast(cidr('10.0.0.7/32'))).toBe(parseIPv4('10.0.0.7'));
    expect(cidrSize(cidr('0.0.0.0/0'))).toBe(2 ** 32);
    expect(cidrLast(cidr('0.0.0.0/0'))).toBe(0xffffffff);
  });
});

describe('cidrContains', () => {
  const net = cidr('10.0.0.0/24');

  it('includes the first and last address and excludes their neighbours', () => {
    expect(cidrContains(net, parseIPv4('10.0.0.0'))).toBe(true);
    expect(cidrContains(net, parseIPv4('10.0.0.255'))).toBe(true);
    expect(cidrContains(net, parseIPv4('9.255.255.255'))).toBe(false);
    expect(cidrContains(net, parseIPv4('10.0.1.0'))).toBe(false);
  });

  it('/0 contains every address', () => {
    const all = cidr('0.0.0.0/0');
    expect(cidrContains(all, 0)).toBe(true);
    expect(cidrContains(all, 0xffffffff)).toBe(true);
  });
});

describe('cidrContainsCidr', () => {
  it('holds for itself, a sub-block and not for a larger or disjoint block', () => {
    const outer = cidr('10.0.0.0/16');
    expect(cidrContainsCidr(outer, outer)).toBe(true);
    expect(cidrContainsCidr(outer, cidr('10.0.255.0/24'))).toBe(true);
    expect(cidrContainsCidr(outer, cidr('10.0.0.0/8'))).toBe(false);
    expect(cidrContainsCidr(outer, cidr('10.1.0.0/24'))).toBe(false);
    expect(cidrContainsCidr(cidr('0.0.0.0/0'), cidr('255.255.255.255/32'))).toBe(true);
  });
});

describe('cidrOverlaps', () => {
  it.each([
    ['10.0.0.0/24', '10.0.0.0/24', true],
    ['10.0.0.0/8', '10.200.0.0/16', true],
    ['10.200.0.0/16', '10.0.0.0/8', true],
    ['10.0.0.0/24', '10.0.1.0/24', false],
    ['10.0.0.0/25', '10.0.0.128/25', false],
    ['10.0.0.255/32', '10.0.0.0/24', true],
    ['10.0.1.0/32', '10.0.0.0/24', false],
    ['0.0.0.0/0', '192.168.0.0/16', true],
    ['255.255.255.255/32', '0.0.0.0/0', true],
    ['0.0.0.0/1', '128.0.0.0/1', false],
  ])('%s and %s -> %s', (a, b, expected) => {
    expect(cidrOverlaps(cidr(a), cidr(b))).toBe(expected);
    expect(cidrOverlaps(cidr(b), cidr(a))).toBe(expected);
  });
});
