import { invalidArgument } from '../errors.js';

/**
 * IPv4 addresses as unsigned 32-bit numbers, and CIDRs as {base, prefix}. Parsing is strict
 * (no leading zeros, no shorthand) because these strings come from users and from etcd.
 */
export interface Cidr {
  readonly base: number; // network address, host bits zero
  readonly prefix: number;
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

export function tryParseIPv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function parseIPv4(text: string, what = 'address'): number {
  const value = tryParseIPv4(text.trim());
  if (value === undefined) {
    if (text.includes(':')) throw invalidArgument(`${what} "${text}" is IPv6; ctnet supports IPv4 only for now`);
    throw invalidArgument(`${what} "${text}" is not an IPv4 address; write it as four numbers 0-255, e.g. 10.0.0.5`);
  }
  return value;
}

export function formatIPv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses "a.b.c.d/n". With `strict`, host bits must be zero (as Docker requires for --subnet). */
export function parseCidr(text: string, what = 'subnet', strict = true): Cidr {
  const trimmed = text.trim();
  const slash = trimmed.indexOf('/');
  if (slash < 0) throw invalidArgument(`${what} "${text}" is not a CIDR; write it as address/prefix, e.g. 10.10.0.0/24`);
  const addr = parseIPv4(trimmed.slice(0, slash), what);
  const prefixText = trimmed.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^[0-9]{1,2}$/.test(prefixText) || prefix > 32) {
    throw invalidArgument(`${what} "${text}" has prefix length "${prefixText}"; use a number from 0 to 32`);
  }
  const base = (addr & maskOf(prefix)) >>> 0;
  if (strict && base !== addr) {
    throw invalidArgument(`${what} "${text}" has host bits set; did you mean ${formatCidr({ base, prefix })}?`);
  }
  return { base, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIPv4(cidr.base)}/${cidr.prefix}`;
}

export function cidrSize(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

export function cidrLast(cidr: Cidr): number {
  return cidr.base + cidrSize(cidr) - 1;
}

export function cidrContains(cidr: Cidr, addr: number): boolean {
  return addr >= cidr.base && addr <= cidrLast(cidr);
}

export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && cidrContains(outer, inner.base);
}

export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return a.base <= cidrLast(b) && b.base <= cidrLast(a);
}
