import {
  DNS_HEADER_SIZE,
  DnsClass,
  EDNS_UDP_CAP,
  HeaderFlag,
  MAX_LABEL,
  MAX_NAME_WIRE,
  Opcode,
  RRType,
  TCP_MAX_MESSAGE,
  UDP_PLAIN_MAX,
} from './constants.js';

/**
 * Parses one DNS query from the wire. The input is hostile: every read is bounds-checked, the
 * name walk only moves forward (compression pointers are refused, so nothing can loop), and the
 * function returns a typed error instead of throwing. The hot path allocates the result object,
 * the qname string, one subarray and, with EDNS, one small object. qname is built by string
 * concatenation: measured as fast as a scratch buffer + fromCharCode, and V8 flattens it once,
 * when the caller hashes it for the zone lookup.
 *
 * `qnameWire` aliases the input buffer: do not reuse that buffer until the response is built.
 */

export interface Edns {
  /** The requestor's UDP payload size, as sent (may be below 512; see `responseLimit`). */
  readonly udpSize: number;
  /** DNSSEC OK; RFC 3225 wants it copied into the response. */
  readonly do: boolean;
  readonly version: number;
}

export interface ParsedQuery {
  readonly ok: true;
  readonly id: number;
  /** The raw second header word; `rd`, `cd` and `opcode` are decoded from it. */
  readonly flags: number;
  readonly opcode: number;
  readonly rd: boolean;
  readonly cd: boolean;
  /**
   * Lowercased (ASCII only), dotted, no trailing dot; the root is ''. Bytes that would make the
   * dotted form ambiguous are escaped as in zone files: '.' and '\' as `\.` and `\\`, bytes
   * outside 0x21-0x7e as `\DDD`. Such names never match a ctnet zone name.
   */
  readonly qname: string;
  /** The question name exactly as sent (root label included), to echo case-preserving. */
  readonly qnameWire: Uint8Array;
  readonly qtype: number;
  readonly qclass: number;
  readonly edns: Edns | undefined;
  /** Offset just past the question section. */
  readonly questionEnd: number;
}

/**
 * How the caller should react:
 * - `short`: fewer than 12 bytes, no header to answer: drop.
 * - `response`: QR set: drop (answering responses invites reflection loops).
 * - `formerr`: header readable, the rest is not: answer FORMERR.
 * - `notimp`: opcode other than QUERY: answer NOTIMP.
 * - `badclass`: class other than IN or ANY: answer REFUSED (the question is in `query`).
 * - `badvers`: EDNS version other than 0: answer BADVERS (RFC 6891 §6.1.3).
 */
export type QueryErrorKind = 'short' | 'response' | 'formerr' | 'notimp' | 'badclass' | 'badvers';

/** Constant reason codes, cheap to produce under a flood and usable as metric labels. */
export type QueryErrorReason =
  | 'too-short'
  | 'qr-set'
  | 'opcode'
  | 'qdcount'
  | 'ancount-nscount'
  | 'arcount'
  | 'truncated-question'
  | 'label-type'
  | 'compression-in-question'
  | 'name-too-long'
  | 'opt-owner-not-root'
  | 'additional-not-opt'
  | 'truncated-opt'
  | 'malformed-opt-options'
  | 'trailing-bytes'
  | 'edns-version'
  | 'class';

export interface QueryError {
  readonly ok: false;
  readonly kind: QueryErrorKind;
  readonly reason: QueryErrorReason;
  /** -1 when the message is too short to carry one. */
  readonly id: number;
  readonly flags: number;
  /** The parsed question, when it was readable (`badclass`, `badvers`, late `formerr`s). */
  readonly query: ParsedQuery | undefined;
}

export type ParseResult = ParsedQuery | QueryError;

function fail(
  kind: QueryErrorKind,
  reason: QueryErrorReason,
  id: number,
  flags: number,
  query?: ParsedQuery,
): QueryError {
  return { ok: false, kind, reason, id, flags, query };
}

const BACKSLASH = 0x5c;
const DOT = 0x2e;

export function parseQuery(msg: Uint8Array): ParseResult {
  const len = msg.length;
  if (len < DNS_HEADER_SIZE) return fail('short', 'too-short', -1, 0);
  const id = (msg[0]! << 8) | msg[1]!;
  const flags = (msg[2]! << 8) | msg[3]!;
  if (flags & HeaderFlag.QR) return fail('response', 'qr-set', id, flags);
  const opcode = (flags & HeaderFlag.OPCODE_MASK) >>> 11;
  // Other opcodes give the four counts other meanings (UPDATE's zone/prereq/update), so stop here.
  if (opcode !== Opcode.QUERY) return fail('notimp', 'opcode', id, flags);
  if (msg[4] !== 0 || msg[5] !== 1) return fail('formerr', 'qdcount', id, flags);
  if ((msg[6]! | msg[7]! | msg[8]! | msg[9]!) !== 0) return fail('formerr', 'ancount-nscount', id, flags);
  const arcount = (msg[10]! << 8) | msg[11]!;
  if (arcount > 1) return fail('formerr', 'arcount', id, flags);

  // The question name. `p` strictly increases each turn and every label is bounds-checked.
  let p = DNS_HEADER_SIZE;
  let qname = '';
  for (;;) {
    if (p >= len) return fail('formerr', 'truncated-question', id, flags);
    const l = msg[p]!;
    if (l === 0) break;
    if (l > MAX_LABEL) {
      return fail('formerr', l >= 0xc0 ? 'compression-in-question' : 'label-type', id, flags);
    }
    const end = p + 1 + l;
    // +1 for the root label still to come.
    if (end + 1 - DNS_HEADER_SIZE > MAX_NAME_WIRE) return fail('formerr', 'name-too-long', id, flags);
    if (end > len) return fail('formerr', 'truncated-question', id, flags);
    if (p > DNS_HEADER_SIZE) qname += '.';
    for (let i = p + 1; i < end; i++) {
      const c = msg[i]!;
      if (c >= 0x61 && c <= 0x7a) qname += String.fromCharCode(c); // the common case: lowercase already
      else if (c >= 0x41 && c <= 0x5a) qname += String.fromCharCode(c + 0x20);
      else if (c === DOT || c === BACKSLASH) qname += '\\' + String.fromCharCode(c);
      else if (c < 0x21 || c > 0x7e) qname += '\\' + String(c).padStart(3, '0');
      else qname += String.fromCharCode(c);
    }
    p = end;
  }
  const nameEnd = p + 1;
  if (nameEnd + 4 > len) return fail('formerr', 'truncated-question', id, flags);
  const qtype = (msg[nameEnd]! << 8) | msg[nameEnd + 1]!;
  const qclass = (msg[nameEnd + 2]! << 8) | msg[nameEnd + 3]!;
  const questionEnd = nameEnd + 4;
  const qnameWire = msg.subarray(DNS_HEADER_SIZE, nameEnd);

  let edns: Edns | undefined;
  let ednsError: QueryErrorReason | undefined;
  if (arcount === 1) {
    const r = parseOpt(msg, questionEnd);
    if (typeof r === 'string') ednsError = r;
    else edns = r;
  } else if (questionEnd !== len) {
    ednsError = 'trailing-bytes';
  }

  const query: ParsedQuery = {
    ok: true,
    id,
    flags,
    opcode,
    rd: (flags & HeaderFlag.RD) !== 0,
    cd: (flags & HeaderFlag.CD) !== 0,
    qname,
    qnameWire,
    qtype,
    qclass,
    edns,
    questionEnd,
  };
  if (ednsError !== undefined) return fail('formerr', ednsError, id, flags, query);
  if (edns !== undefined && edns.version !== 0) return fail('badvers', 'edns-version', id, flags, query);
  if (qclass !== DnsClass.IN && qclass !== DnsClass.ANY) return fail('badclass', 'class', id, flags, query);
  return query;
}

/** Parses the one additional record, which must be an OPT ending exactly at the message end. */
function parseOpt(msg: Uint8Array, p: number): Edns | QueryErrorReason {
  const len = msg.length;
  if (p + 11 > len) return p < len && msg[p] !== 0 ? 'opt-owner-not-root' : 'truncated-opt';
  if (msg[p] !== 0) return 'opt-owner-not-root';
  if (((msg[p + 1]! << 8) | msg[p + 2]!) !== RRType.OPT) return 'additional-not-opt';
  const udpSize = (msg[p + 3]! << 8) | msg[p + 4]!;
  // TTL: extended rcode (p+5, zero in queries and ignored), version, then the flags word.
  const version = msg[p + 6]!;
  const doBit = (msg[p + 7]! & 0x80) !== 0;
  const rdlen = (msg[p + 9]! << 8) | msg[p + 10]!;
  const end = p + 11 + rdlen;
  if (end > len) return 'truncated-opt';
  if (end !== len) return 'trailing-bytes';
  // Options are code(2) length(2) data; they must tile the rdata exactly. `q` grows by >= 4.
  let q = p + 11;
  while (q < end) {
    if (q + 4 > end) return 'malformed-opt-options';
    q += 4 + ((msg[q + 2]! << 8) | msg[q + 3]!);
  }
  if (q !== end) return 'malformed-opt-options';
  return { udpSize, do: doBit, version };
}

/**
 * The largest response this query allows: 512 over plain UDP, the advertised EDNS size (at least
 * 512, at most `udpCap`) with EDNS, 65535 over TCP.
 */
export function responseLimit(q: ParsedQuery, transport: 'udp' | 'tcp', udpCap: number = EDNS_UDP_CAP): number {
  if (transport === 'tcp') return TCP_MAX_MESSAGE;
  if (q.edns === undefined) return UDP_PLAIN_MAX;
  return Math.max(UDP_PLAIN_MAX, Math.min(q.edns.udpSize, udpCap));
}
