import { describe, it, expect } from 'vitest';
import { expectInvalid } from '../testing/expect-invalid.js';
import { formatIPv4, parseIPv4 } from '../net/ipv4.js';
import { encodeName, ipv4ToPtrName, nameWireLength, ptrNameToIPv4 } from './names.js';

describe('reverse names', () => {
  it.each([
    ['5.0.10.10.in-addr.arpa', '10.10.0.5'],
    ['0.0.0.0.in-addr.arpa', '0.0.0.0'],
    ['255.255.255.255.in-addr.arpa', '255.255.255.255'],
    ['1.2.168.192.in-addr.arpa', '192.168.2.1'],
  ])('%s -> %s and back', (name, addr) => {
    const value = ptrNameToIPv4(name);
    expect(value).toBe(parseIPv4(addr));
    expect(formatIPv4(value!)).toBe(addr);
    expect(ipv4ToPtrName(parseIPv4(addr))).toBe(name);
  });

  it.each([
    ['a partial (network) reverse name', '10.10.in-addr.arpa'],
    ['five octets', '1.5.0.10.10.in-addr.arpa'],
    ['an octet over 255', '256.0.10.10.in-addr.arpa'],
    ['a leading zero', '05.0.10.10.in-addr.arpa'],
    ['a letter', '5.0.1a.10.in-addr.arpa'],
    ['an empty label', '5..10.10.in-addr.arpa'],
    ['an empty first label', '.5.0.10.10.in-addr.arpa'],
    ['a dot before the suffix', '5.0.10.10..in-addr.arpa'],
    ['another suffix', '5.0.10.10.ip6.arpa'],
    ['the suffix alone', 'in-addr.arpa'],
    ['no dot before the suffix', '5.0.10.10in-addr.arpa'],
    ['a zone-file escape', '5\\.0.10.10.in-addr.arpa'],
    ['a plain name', 'web'],
  ])('rejects %s', (_label, name) => {
    expect(ptrNameToIPv4(name)).toBeUndefined();
  });
});

describe('wire names', () => {
  it('encodes labels with their lengths and keeps case', () => {
    expect(Array.from(encodeName('Web.app'))).toEqual([3, 0x57, 0x65, 0x62, 3, 0x61, 0x70, 0x70, 0]);
    expect(Array.from(encodeName('web.app.'))).toEqual(Array.from(encodeName('web.app')));
    expect(Array.from(encodeName(''))).toEqual([0]);
    expect(Array.from(encodeName('.'))).toEqual([0]);
  });

  it('measures up to 255 bytes and refuses more', () => {
    const longest = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.');
    expect(nameWireLength(longest)).toBe(255);
    expect(nameWireLength(longest + 'd')).toBe(-1);
  });

  it.each([
    ['an empty label', 'a..b'],
    ['a leading dot', '.a'],
    ['a label of 64', 'a'.repeat(64)],
    ['non-ASCII', 'café'],
  ])('refuses %s', (_label, name) => {
    expect(nameWireLength(name)).toBe(-1);
    expectInvalid(() => encodeName(name), /cannot be encoded/);
  });
});
