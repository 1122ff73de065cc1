import { describe, it, expect } from 'vitest';
import { DnsClass, RRType } from './constants.js';
import { buildQuery } from './query.js';
import { type ParseResult, type ParsedQuery, type QueryError, parseQuery, responseLimit } from './wire.js';

function ok(r: ParseResult): ParsedQuery {
  if (!r.ok) throw new Error(`expected a query, got ${r.kind}/${r.reason}`);
  return r;
}

function err(r: ParseResult): QueryError {
  if (r.ok) throw new Error(`expected an error, got a query for "${r.qname}"`);
  return r;
}

/** Sets bytes at offsets, returning a copy. */
function patch(msg: Uint8Array, at: number, ...bytes: number[]): Uint8Array {
  const out = msg.slice();
  out.set(bytes, at);
  return out;
}

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const header = (id: number, flags: number, qd: number, an: number, ns: number, ar: number) => [
  id >> 8, id & 255, flags >> 8, flags & 255, 0, qd, 0, an, 0, ns, 0, ar,
];

const label = (n: number) => [n, ...new Array<number>(n).fill(0x61)];

describe('parseQuery: well-formed queries', () => {
  it('reads a hand-written A query for Web.App (bytes as dig sends them, without EDNS)', () => {
    const msg = new Uint8Array([
      0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
      3, 0x57, 0x65, 0x62, 3, 0x41, 0x70, 0x70, 0,
      0, 1, 0, 1,
    ]);
    const q = ok(parseQuery(msg));
    expect(q.id).toBe(0x1234);
    expect(q.rd).toBe(true);
    expect(q.cd).toBe(false);
    expect(q.opcode).toBe(0);
    expect(q.qname).toBe('web.app');
    expect(Array.from(q.qnameWire)).toEqual([3, 0x57, 0x65, 0x62, 3, 0x41, 0x70, 0x70, 0]);
    expect(q.qtype).toBe(RRType.A);
    expect(q.qclass).toBe(DnsClass.IN);
    expect(q.edns).toBeUndefined();
    expect(q.questionEnd).toBe(msg.length);
    expect(responseLimit(q, 'udp')).toBe(512);
    expect(responseLimit(q, 'tcp')).toBe(65535);
  });

  it('lowercases qname but keeps the case of the wire name', () => {
    const q = ok(parseQuery(buildQuery('MyService.Front-END', RRType.AAAA, { id: 7 })));
    expect(q.qname).toBe('myservice.front-end');
    expect(String.fromCharCode(...q.qnameWire)).toBe('\x09MyService\x09Front-END\x00');
    expect(q.qtype).toBe(RRType.AAAA);
  });

  it('parses the root name and class ANY', () => {
    const q = ok(parseQuery(buildQuery('', RRType.NS, { qclass: DnsClass.ANY })));
    expect(q.qname).toBe('');
    expect(q.qclass).toBe(DnsClass.ANY);
  });

  it('escapes dots, backslashes and binary bytes inside labels, so they never look like zone names', () => {
    const msg = concat(header(1, 0x0100, 1, 0, 0, 0), [7, 0x77, 0x65, 0x62, 0x2e, 0x61, 0x70, 0x70, 3, 0x5c, 0x00, 0xff, 0], [0, 1, 0, 1]);
    expect(ok(parseQuery(msg)).qname).toBe('web\\.app.\\\\\\000\\255');
  });

  it('reads EDNS: UDP size, DO bit and options', () => {
    const q = ok(parseQuery(buildQuery('web', RRType.A, { edns: { udpSize: 4096, do: true } })));
    expect(q.edns).toEqual({ udpSize: 4096, do: true, version: 0 });
    expect(responseLimit(q, 'udp')).toBe(4096);
    expect(responseLimit(q, 'udp', 1232)).toBe(1232);

    // An OPT carrying a cookie option (code 10, 8 bytes), as dig sends.
    const base = buildQuery('web', RRType.A, { edns: { udpSize: 1232 } });
    const withCookie = concat(patch(base, base.length - 2, 0, 12), [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(ok(parseQuery(withCookie)).edns).toEqual({ udpSize: 1232, do: false, version: 0 });
  });

  it('treats an advertised EDNS size below 512 as 512, and caps large ones at 4096', () => {
    expect(responseLimit(ok(parseQuery(buildQuery('web', 1, { edns: { udpSize: 100 } }))), 'udp')).toBe(512);
    expect(responseLimit(ok(parseQuery(buildQuery('web', 1, { edns: { udpSize: 65535 } }))), 'udp')).toBe(4096);
  });

  it('accepts a name of exactly 255 wire bytes', () => {
    const name = ['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.');
    const q = ok(parseQuery(buildQuery(name, RRType.A)));
    expect(q.qnameWire.length).toBe(255);
    expect(q.qname).toBe(name);
  });
});

describe('parseQuery: hostile and malformed input returns an error, never throws', () => {
  const good = buildQuery('web.app', RRType.A, { id: 0xbeef });
  const goodEdns = buildQuery('web.app', RRType.A, { id: 0xbeef, edns: { udpSize: 1232 } });
  const nameEnd = 12 + 9;

  it.each([
    ['empty', new Uint8Array(0)],
    ['11 bytes', good.subarray(0, 11)],
  ])('%s: too short, nothing to answer', (_label, msg) => {
    const e = err(parseQuery(msg));
    expect(e).toMatchObject({ kind: 'short', reason: 'too-short', id: -1 });
  });

  it('a response (QR set) is dropped, not answered', () => {
    expect(err(parseQuery(patch(good, 2, 0x81)))).toMatchObject({ kind: 'response', id: 0xbeef });
  });

  it('a non-QUERY opcode (UPDATE) asks for NOTIMP, whatever its counts say', () => {
    const update = patch(good, 2, 0x28, 0x00, 0, 1, 0, 1, 0, 3);
    expect(err(parseQuery(update))).toMatchObject({ kind: 'notimp', reason: 'opcode', id: 0xbeef, flags: 0x2800 });
  });

  const formerrs: [string, Uint8Array, string][] = [
    ['QDCOUNT 0', patch(good, 4, 0, 0), 'qdcount'],
    ['QDCOUNT 2', patch(good, 4, 0, 2), 'qdcount'],
    ['QDCOUNT 256', patch(good, 4, 1, 0), 'qdcount'],
    ['ANCOUNT 1', patch(good, 6, 0, 1), 'ancount-nscount'],
    ['NSCOUNT 1', patch(good, 8, 0, 1), 'ancount-nscount'],
    ['ARCOUNT 2', patch(good, 10, 0, 2), 'arcount'],
    ['header only', good.subarray(0, 12), 'truncated-question'],
    ['cut inside a label', good.subarray(0, 15), 'truncated-question'],
    ['cut before the root label', good.subarray(0, nameEnd - 1), 'truncated-question'],
    ['cut inside qtype/qclass', good.subarray(0, good.length - 1), 'truncated-question'],
    ['label length 64', concat(header(1, 0, 1, 0, 0, 0), [64], new Uint8Array(64), [0, 0, 1, 0, 1]), 'label-type'],
    ['label type 0x40 (extended)', patch(good, 12, 0x41), 'label-type'],
    ['label type 0x80 (reserved)', patch(good, 12, 0x83), 'label-type'],
    ['compression pointer to itself', concat(header(1, 0, 1, 0, 0, 0), [0xc0, 12, 0, 1, 0, 1]), 'compression-in-question'],
    ['compression pointer after a label', concat(header(1, 0, 1, 0, 0, 0), [3, 0x77, 0x65, 0x62, 0xc0, 12, 0, 1, 0, 1]), 'compression-in-question'],
    ['name of 256 wire bytes', concat(header(1, 0, 1, 0, 0, 0), label(63), label(63), label(63), label(62), [0, 0, 1, 0, 1]), 'name-too-long'],
    ['name of 257 bytes, cut short', concat(header(1, 0, 1, 0, 0, 0), label(63), label(63), label(63), label(63)), 'name-too-long'],
    ['128 one-byte labels', concat(header(1, 0, 1, 0, 0, 0), ...Array.from({ length: 128 }, () => [1, 0x61]), [0, 0, 1, 0, 1]), 'name-too-long'],
    ['trailing bytes without EDNS', concat(good, [0]), 'trailing-bytes'],
    ['ARCOUNT 1 with nothing there', patch(good, 10, 0, 1), 'truncated-opt'],
    ['OPT cut short', goodEdns.subarray(0, goodEdns.length - 1), 'truncated-opt'],
    ['OPT owner not root', patch(goodEdns, nameEnd + 4, 1), 'opt-owner-not-root'],
    ['OPT owner a pointer', patch(goodEdns, nameEnd + 4, 0xc0, 0x0c), 'opt-owner-not-root'],
    ['additional record a TSIG, not OPT', patch(goodEdns, nameEnd + 6, 250), 'additional-not-opt'],
    ['OPT rdlength past the end', patch(goodEdns, goodEdns.length - 2, 0, 4), 'truncated-opt'],
    ['bytes after the OPT', concat(goodEdns, [0, 0]), 'trailing-bytes'],
    ['OPT option longer than the rdata', concat(patch(goodEdns, goodEdns.length - 2, 0, 6), [0, 10, 0, 8, 1, 2]), 'malformed-opt-options'],
    ['OPT option header cut', concat(patch(goodEdns, goodEdns.length - 2, 0, 3), [0, 10, 0]), 'malformed-opt-options'],
  ];

  it.each(formerrs)('%s: FORMERR (%s)', (_label, msg, reason) => {
    const e = err(parseQuery(msg));
    expect(e.kind).toBe('formerr');
    expect(e.reason).toBe(reason);
    expect(e.id).toBe((msg[0]! << 8) | msg[1]!);
  });

  it('keeps the parsed question on a FORMERR found after it, without EDNS', () => {
    const e = err(parseQuery(concat(goodEdns, [0, 0])));
    expect(e.query?.qname).toBe('web.app');
    expect(e.query?.edns).toBeUndefined();
  });

  it.each([
    ['CHAOS', 3],
    ['HESIOD', 4],
    ['NONE', 254],
    ['class 0', 0],
  ])('class %s is its own kind, with the question for a REFUSED answer', (_label, qclass) => {
    const e = err(parseQuery(buildQuery('version.bind', 16, { qclass })));
    expect(e.kind).toBe('badclass');
    expect(e.query?.qname).toBe('version.bind');
    expect(e.query?.qclass).toBe(qclass);
  });

  it('EDNS version 1 asks for BADVERS, keeping the question and EDNS details', () => {
    const e = err(parseQuery(patch(goodEdns, nameEnd + 4 + 6, 1)));
    expect(e.kind).toBe('badvers');
    expect(e.query?.edns).toEqual({ udpSize: 1232, do: false, version: 1 });
  });
});
