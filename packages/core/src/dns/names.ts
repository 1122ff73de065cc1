import { invalidArgument } from '../errors.js';
import { MAX_LABEL, MAX_NAME_WIRE } from './constants.js';

/**
 * Reverse names and wire-format names. Names here are ctnet's own (service, container and
 * network names, already validated as DNS labels), written dotted without a trailing dot and
 * without zone-file escapes.
 */

const REVERSE_SUFFIX = '.in-addr.arpa';

/**
 * '5.0.10.10.in-addr.arpa' -> 10.10.0.5 as a uint32. Expects the lowercase form `parseQuery`
 * returns. Anything that is not exactly four decimal octets (0-255, no leading zeros) under
 * in-addr.arpa gives undefined, including partial names such as '10.10.in-addr.arpa'.
 */
export function ptrNameToIPv4(name: string): number | undefined {
  const stop = name.length - REVERSE_SUFFIX.length;
  if (stop < 7 || !name.endsWith(REVERSE_SUFFIX)) return undefined;
  let value = 0;
  let octets = 0;
  let i = 0;
  while (i < stop) {
    const start = i;
    let octet = 0;
    while (i < stop) {
      const c = name.charCodeAt(i);
      if (c === 0x2e) break;
      if (c < 0x30 || c > 0x39) return undefined;
      octet = octet * 10 + (c - 0x30);
      i++;
    }
    const digits = i - start;
    if (digits === 0 || digits > 3 || octet > 255) return undefined;
    if (digits > 1 && name.charCodeAt(start) === 0x30) return undefined;
    // The first label is the last octet of the address.
    value += octet * 256 ** octets;
    octets++;
    if (i < stop) i++; // the dot between octets
    else break;
    if (i === stop) return undefined; // "1.2.3.4." before the suffix: an empty label
  }
  return octets === 4 ? value : undefined;
}

export function ipv4ToPtrName(addr: number): string {
  return `${addr & 255}.${(addr >>> 8) & 255}.${(addr >>> 16) & 255}.${addr >>> 24}${REVERSE_SUFFIX}`;
}

/**
 * The wire length of a dotted name (root label included), or -1 when it cannot be encoded:
 * an empty label, a label over 63 bytes, more than 255 bytes, or a character outside ASCII.
 * The root is '' (or '.'). A trailing dot is accepted.
 */
export function nameWireLength(name: string): number {
  const text = name.endsWith('.') ? name.slice(0, -1) : name;
  if (text === '') return 1;
  let label = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2e) {
      if (label === 0) return -1;
      label = 0;
    } else {
      if (c > 0x7f) return -1;
      if (++label > MAX_LABEL) return -1;
    }
  }
  if (label === 0) return -1;
  const total = text.length + 2;
  return total > MAX_NAME_WIRE ? -1 : total;
}

/**
 * Writes a name that `nameWireLength` accepted at `offset`; returns the offset after it.
 * Case is kept as given.
 */
export function writeName(out: Uint8Array, offset: number, name: string): number {
  const text = name.endsWith('.') ? name.slice(0, -1) : name;
  let lengthAt = offset;
  let p = offset + 1;
  if (text !== '') {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x2e) {
        out[lengthAt] = p - lengthAt - 1;
        lengthAt = p++;
      } else {
        out[p++] = c;
      }
    }
    out[lengthAt] = p - lengthAt - 1;
    lengthAt = p++;
  }
  out[lengthAt] = 0;
  return p;
}

/** Encodes a dotted name to wire format, e.g. for PTR rdata. */
export function encodeName(name: string): Uint8Array {
  const size = nameWireLength(name);
  if (size < 0) {
    throw invalidArgument(
      `DNS name "${name}" cannot be encoded; use ASCII labels of 1-63 characters, 255 bytes in all`,
    );
  }
  const out = new Uint8Array(size);
  writeName(out, 0, name);
  return out;
}
