import { invalidArgument } from '../errors.js';
import {
  DNS_HEADER_SIZE,
  DnsClass,
  EDNS_ADVERTISED_SIZE,
  HeaderFlag,
  Rcode,
  RRType,
  TCP_MAX_MESSAGE,
  UDP_PLAIN_MAX,
} from './constants.js';
import { nameWireLength, writeName } from './names.js';
import type { ParsedQuery, QueryError } from './wire.js';

/**
 * Builds responses straight into one exactly-sized Uint8Array: sizes are summed first, then the
 * bytes written in one pass, so a response costs one allocation (PTR names are not cached).
 *
 * Every answer is owned by the question name, written as a pointer to offset 12 (0xC00C); that
 * fits A and PTR answers, the only ones ctnet gives, since it never answers with a CNAME chain.
 */

export type Answer = { readonly type: 'A'; readonly addr: number } | { readonly type: 'PTR'; readonly name: string };

export interface ResponseSpec {
  /** 0-15, or BADVERS (16) when the query had EDNS; the upper bits go in the OPT record. */
  readonly rcode: number;
  readonly answers: readonly Answer[];
  /** Seconds, for every answer. */
  readonly ttl: number;
  /** From `responseLimit`; values under 512 are treated as 512, which every client accepts. */
  readonly maxSize: number;
  readonly authoritative: boolean;
}

const A_RR_SIZE = 16; // pointer 2, type 2, class 2, ttl 4, rdlength 2, address 4
const RR_FIXED_SIZE = 12; // the same without rdata
const OPT_RR_SIZE = 11; // root 1, type 2, class 2, ttl 4, rdlength 2, no options

/**
 * The response flags: QR, the query's opcode, RD and CD copied; RA set because names outside our
 * zone are forwarded; AA when authoritative; TC when answers were dropped.
 */
function responseFlags(requestFlags: number, rcode: number, aa: boolean, tc: boolean): number {
  return (
    HeaderFlag.QR |
    (requestFlags & (HeaderFlag.OPCODE_MASK | HeaderFlag.RD | HeaderFlag.CD)) |
    HeaderFlag.RA |
    (aa ? HeaderFlag.AA : 0) |
    (tc ? HeaderFlag.TC : 0) |
    (rcode & HeaderFlag.RCODE_MASK)
  );
}

function answerSize(a: Answer): number {
  if (a.type === 'A') return A_RR_SIZE;
  const size = nameWireLength(a.name);
  if (size < 0) throw invalidArgument(`PTR target "${a.name}" is not an encodable DNS name`);
  return RR_FIXED_SIZE + size;
}

export function buildResponse(q: ParsedQuery, r: ResponseSpec): Uint8Array {
  if (r.rcode > HeaderFlag.RCODE_MASK && q.edns === undefined) {
    throw invalidArgument(`rcode ${r.rcode} needs EDNS, but the query had no OPT record`);
  }
  const limit = Math.min(Math.max(r.maxSize, UDP_PLAIN_MAX), TCP_MAX_MESSAGE);
  const qnameLen = q.qnameWire.length;
  const head = DNS_HEADER_SIZE + qnameLen + 4 + (q.edns ? OPT_RR_SIZE : 0);
  const answers = r.answers;
  let body = 0;
  for (let i = 0; i < answers.length; i++) body += answerSize(answers[i]!);
  // Truncation drops every answer: the client retries over TCP, which always fits.
  const tc = head + body > limit;
  const count = tc ? 0 : answers.length;
  const out = new Uint8Array(tc ? head : head + body);

  const flags = responseFlags(q.flags, r.rcode, r.authoritative, tc);
  out[0] = q.id >>> 8;
  out[1] = q.id;
  out[2] = flags >>> 8;
  out[3] = flags;
  out[5] = 1; // QDCOUNT
  out[6] = count >>> 8;
  out[7] = count;
  out[11] = q.edns ? 1 : 0; // ARCOUNT
  out.set(q.qnameWire, DNS_HEADER_SIZE);
  let p = DNS_HEADER_SIZE + qnameLen;
  out[p++] = q.qtype >>> 8;
  out[p++] = q.qtype;
  out[p++] = q.qclass >>> 8;
  out[p++] = q.qclass;

  // RFC 2181 §8: a TTL with the top bit set means zero.
  const ttl = r.ttl >= 0 && r.ttl <= 0x7fffffff ? r.ttl >>> 0 : 0;
  for (let i = 0; i < count; i++) {
    const a = answers[i]!;
    out[p] = 0xc0;
    out[p + 1] = DNS_HEADER_SIZE;
    out[p + 3] = a.type === 'A' ? RRType.A : RRType.PTR;
    out[p + 5] = DnsClass.IN; // even for qclass ANY: the data is IN data
    out[p + 6] = ttl >>> 24;
    out[p + 7] = ttl >>> 16;
    out[p + 8] = ttl >>> 8;
    out[p + 9] = ttl;
    if (a.type === 'A') {
      out[p + 11] = 4;
      out[p + 12] = a.addr >>> 24;
      out[p + 13] = a.addr >>> 16;
      out[p + 14] = a.addr >>> 8;
      out[p + 15] = a.addr;
      p += A_RR_SIZE;
    } else {
      const end = writeName(out, p + RR_FIXED_SIZE, a.name);
      const rdlen = end - p - RR_FIXED_SIZE;
      out[p + 10] = rdlen >>> 8;
      out[p + 11] = rdlen;
      p = end;
    }
  }

  if (q.edns) {
    // OPT: root owner, our UDP size as class, TTL = extended rcode, version 0, DO copied (RFC 3225).
    out[p + 2] = RRType.OPT;
    out[p + 3] = EDNS_ADVERTISED_SIZE >>> 8;
    out[p + 4] = EDNS_ADVERTISED_SIZE & 0xff;
    out[p + 5] = r.rcode >>> 4;
    out[p + 7] = q.edns.do ? 0x80 : 0;
  }
  return out;
}

/**
 * An error response. With the parsed question it is echoed (and an OPT added when the query had
 * one); without, the response is the bare header with QDCOUNT 0, for queries whose question
 * could not be read.
 */
export function buildError(id: number, requestFlags: number, rcode: number, question?: ParsedQuery): Uint8Array {
  if (question !== undefined) {
    return buildResponse(question, { rcode, answers: [], ttl: 0, maxSize: UDP_PLAIN_MAX, authoritative: false });
  }
  const out = new Uint8Array(DNS_HEADER_SIZE);
  const flags = responseFlags(requestFlags, rcode, false, false);
  out[0] = id >>> 8;
  out[1] = id;
  out[2] = flags >>> 8;
  out[3] = flags;
  return out;
}

/**
 * The response a parse error calls for, or undefined when the message must be dropped (too short
 * to carry an id, or itself a response).
 */
export function errorResponse(e: QueryError): Uint8Array | undefined {
  switch (e.kind) {
    case 'short':
    case 'response':
      return undefined;
    case 'formerr':
      return buildError(e.id, e.flags, Rcode.FORMERR, e.query);
    case 'notimp':
      return buildError(e.id, e.flags, Rcode.NOTIMP);
    case 'badclass':
      return buildError(e.id, e.flags, Rcode.REFUSED, e.query);
    case 'badvers':
      return buildError(e.id, e.flags, Rcode.BADVERS, e.query);
  }
}
