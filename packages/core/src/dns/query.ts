import { invalidArgument } from '../errors.js';
import { DNS_HEADER_SIZE, DnsClass, HeaderFlag, RRType } from './constants.js';
import { nameWireLength, writeName } from './names.js';

/**
 * Builds a standard query, as a stub resolver would. ctnet's server never needs this; it is
 * here for the DNS benchmark's load generator, lab tests and a resolver self-check.
 */
export interface QueryOptions {
  readonly id?: number;
  /** Recursion desired; default true, as stub resolvers send. */
  readonly rd?: boolean;
  readonly qclass?: number;
  /** Adds an OPT record advertising this UDP size. */
  readonly edns?: { readonly udpSize: number; readonly do?: boolean };
}

export function buildQuery(name: string, qtype: number, opts: QueryOptions = {}): Uint8Array {
  const nameLen = nameWireLength(name);
  if (nameLen < 0) throw invalidArgument(`query name "${name}" is not an encodable DNS name`);
  const size = DNS_HEADER_SIZE + nameLen + 4 + (opts.edns ? 11 : 0);
  const out = new Uint8Array(size);
  const id = opts.id ?? 0;
  const flags = opts.rd === false ? 0 : HeaderFlag.RD;
  out[0] = id >>> 8;
  out[1] = id;
  out[2] = flags >>> 8;
  out[5] = 1;
  out[11] = opts.edns ? 1 : 0;
  let p = writeName(out, DNS_HEADER_SIZE, name);
  const qclass = opts.qclass ?? DnsClass.IN;
  out[p++] = qtype >>> 8;
  out[p++] = qtype;
  out[p++] = qclass >>> 8;
  out[p++] = qclass;
  if (opts.edns) {
    out[p + 2] = RRType.OPT;
    out[p + 3] = opts.edns.udpSize >>> 8;
    out[p + 4] = opts.edns.udpSize;
    out[p + 7] = opts.edns.do ? 0x80 : 0;
  }
  return out;
}
