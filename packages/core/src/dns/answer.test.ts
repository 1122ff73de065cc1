import { describe, it, expect } from 'vitest';
import { expectInvalid } from '../testing/expect-invalid.js';
import { formatIPv4, parseIPv4 } from '../net/ipv4.js';
import { type Answer, buildError, buildResponse, errorResponse } from './answer.js';
import { DnsClass, Rcode, RRType } from './constants.js';
import { buildQuery } from './query.js';
import { type ParsedQuery, parseQuery, responseLimit } from './wire.js';

interface DecodedRR {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: string; // dotted address for A, name for PTR, '' for OPT
}

interface Decoded {
  id: number;
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  cd: boolean;
  rcode: number;
  question: { name: string; type: number; class: number } | undefined;
  answers: DecodedRR[];
  additional: DecodedRR[];
}

/** A small, independent response decoder: follows pointers (with a hop limit), as a client would. */
function decode(msg: Uint8Array): Decoded {
  const u16 = (at: number) => (msg[at]! << 8) | msg[at + 1]!;
  const name = (start: number): [string, number] => {
    const labels: string[] = [];
    let at = start;
    let end = -1;
    for (let hops = 0; hops < 20; hops++) {
      const l = msg[at]!;
      if (l === 0) return [labels.join('.'), end < 0 ? at + 1 : end];
      if (l >= 0xc0) {
        if (end < 0) end = at + 2;
        at = u16(at) & 0x3fff;
        continue;
      }
      labels.push(String.fromCharCode(...msg.subarray(at + 1, at + 1 + l)));
      at += 1 + l;
    }
    throw new Error('pointer loop');
  };
  const rr = (at: number): [DecodedRR, number] => {
    const [owner, p] = name(at);
    const type = u16(p);
    const rdlen = u16(p + 8);
    const rdata = p + 10;
    let data = '';
    if (type === RRType.A) data = formatIPv4(((u16(rdata) << 16) | u16(rdata + 2)) >>> 0);
    if (type === RRType.PTR) data = name(rdata)[0];
    const ttl = ((u16(p + 4) << 16) | u16(p + 6)) >>> 0;
    return [{ name: owner, type, class: u16(p + 2), ttl, data }, rdata + rdlen];
  };
  const flags = u16(2);
  let p = 12;
  let question: Decoded['question'];
  if (u16(4) === 1) {
    const [qn, after] = name(p);
    question = { name: qn, type: u16(after), class: u16(after + 2) };
    p = after + 4;
  }
  const answers: DecodedRR[] = [];
  for (let i = 0; i < u16(6); i++) [answers[i], p] = rr(p) as [DecodedRR, number];
  const additional: DecodedRR[] = [];
  for (let i = 0; i < u16(10); i++) [additional[i], p] = rr(p) as [DecodedRR, number];
  expect(p, 'decoder consumed the whole message').toBe(msg.length);
  return {
    id: u16(0),
    qr: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 15,
    aa: (flags & 0x0400) !== 0,
    tc: (flags & 0x0200) !== 0,
    rd: (flags & 0x0100) !== 0,
    ra: (flags & 0x0080) !== 0,
    cd: (flags & 0x0010) !== 0,
    rcode: flags & 15,
    question,
    answers,
    additional,
  };
}

function parsed(msg: Uint8Array): ParsedQuery {
  const r = parseQuery(msg);
  if (!r.ok) throw new Error(`query did not parse: ${r.reason}`);
  return r;
}

const A = (text: string): Answer => ({ type: 'A', addr: parseIPv4(text) });
const spec = (answers: Answer[], extra: Partial<Parameters<typeof buildResponse>[1]> = {}) => ({
  rcode: Rcode.NOERROR,
  answers,
  ttl: 600,
  maxSize: 512,
  authoritative: true,
  ...extra,
});

describe('buildResponse round trips', () => {
  it('answers an A query with several records, owner names compressed to 0xC00C', () => {
    const q = parsed(buildQuery('Web.App', RRType.A, { id: 0x4242 }));
    const addrs = ['10.0.0.2', '10.0.0.3', '10.0.0.255', '192.168.1.1'];
    const out = buildResponse(q, spec(addrs.map(A)));
    const d = decode(out);
    expect(d).toMatchObject({ id: 0x4242, qr: true, opcode: 0, aa: true, tc: false, rd: true, ra: true, rcode: 0 });
    expect(d.question).toEqual({ name: 'Web.App', type: RRType.A, class: DnsClass.IN });
    expect(d.answers.map((a) => a.data)).toEqual(addrs);
    expect(d.answers.every((a) => a.name === 'Web.App' && a.type === RRType.A && a.class === 1 && a.ttl === 600)).toBe(true);
    expect(d.additional).toEqual([]);
    const firstAnswer = 12 + q.qnameWire.length + 4;
    expect([out[firstAnswer], out[firstAnswer + 1]]).toEqual([0xc0, 0x0c]);
    expect(out.length).toBe(firstAnswer + 16 * addrs.length);
  });

  it('answers a PTR query with the name encoded as rdata', () => {
    const q = parsed(buildQuery('5.0.10.10.IN-ADDR.ARPA', RRType.PTR, { rd: false }));
    const d = decode(buildResponse(q, spec([{ type: 'PTR', name: 'web.1.abc.app' }])));
    expect(d.rd).toBe(false);
    expect(d.question?.name).toBe('5.0.10.10.IN-ADDR.ARPA');
    expect(d.answers).toEqual([
      { name: '5.0.10.10.IN-ADDR.ARPA', type: RRType.PTR, class: 1, ttl: 600, data: 'web.1.abc.app' },
    ]);
  });

  it('NODATA: NOERROR with no answers, for AAAA of a known name', () => {
    const d = decode(buildResponse(parsed(buildQuery('web', RRType.AAAA)), spec([])));
    expect(d).toMatchObject({ rcode: Rcode.NOERROR, aa: true, tc: false, answers: [] });
    expect(d.question).toEqual({ name: 'web', type: RRType.AAAA, class: 1 });
  });

  it('NXDOMAIN for an unknown name in our zone', () => {
    const d = decode(buildResponse(parsed(buildQuery('nope.app', RRType.A)), spec([], { rcode: Rcode.NXDOMAIN })));
    expect(d).toMatchObject({ rcode: Rcode.NXDOMAIN, aa: true, answers: [] });
  });

  it('copies CD, answers class ANY questions with IN records, and treats huge TTLs as 0', () => {
    const msg = buildQuery('web', RRType.A, { qclass: DnsClass.ANY });
    msg[3] = 0x10; // CD
    const d = decode(buildResponse(parsed(msg), spec([A('10.0.0.2')], { ttl: 2 ** 31, authoritative: false })));
    expect(d).toMatchObject({ cd: true, aa: false });
    expect(d.question?.class).toBe(DnsClass.ANY);
    expect(d.answers[0]).toMatchObject({ class: DnsClass.IN, ttl: 0 });
  });

  it('adds an OPT record iff the query had one, advertising 1232 and copying DO', () => {
    expect(decode(buildResponse(parsed(buildQuery('web', 1)), spec([A('10.0.0.2')]))).additional).toEqual([]);
    const d = decode(buildResponse(parsed(buildQuery('web', 1, { edns: { udpSize: 4096, do: true } })), spec([A('10.0.0.2')])));
    expect(d.additional).toEqual([{ name: '', type: RRType.OPT, class: 1232, ttl: 0x8000, data: '' }]);
  });

  it('rejects a PTR target that is not a DNS name, and an extended rcode without EDNS', () => {
    const q = parsed(buildQuery('x', RRType.PTR));
    expectInvalid(() => buildResponse(q, spec([{ type: 'PTR', name: 'a..b' }])), /not an encodable DNS name/);
    expectInvalid(() => buildResponse(q, spec([], { rcode: Rcode.BADVERS })), /needs EDNS/);
  });
});

describe('buildResponse size limits', () => {
  const forty = Array.from({ length: 40 }, (_, i) => A(`10.0.1.${i + 1}`));

  it('40 A records do not fit in 512 bytes without EDNS: TC set, no answers', () => {
    const q = parsed(buildQuery('big.app', RRType.A));
    const out = buildResponse(q, spec(forty, { maxSize: responseLimit(q, 'udp') }));
    expect(out.length).toBeLessThanOrEqual(512);
    const d = decode(out);
    expect(d).toMatchObject({ tc: true, answers: [], additional: [] });
    expect(d.question?.name).toBe('big.app');
  });

  it('they fit with EDNS 4096, and over TCP', () => {
    const q = parsed(buildQuery('big.app', RRType.A, { edns: { udpSize: 4096 } }));
    const out = buildResponse(q, spec(forty, { maxSize: responseLimit(q, 'udp') }));
    const d = decode(out);
    expect(d.tc).toBe(false);
    expect(d.answers).toHaveLength(40);
    expect(d.additional[0]?.type).toBe(RRType.OPT);
    const plain = parsed(buildQuery('big.app', RRType.A));
    expect(decode(buildResponse(plain, spec(forty, { maxSize: responseLimit(plain, 'tcp') }))).answers).toHaveLength(40);
  });

  it('the edge: a response of exactly maxSize fits, one byte more truncates', () => {
    const q = parsed(buildQuery('big.app', RRType.A));
    const full = 12 + q.qnameWire.length + 4 + 16 * 30;
    expect(decode(buildResponse(q, spec(forty.slice(0, 30), { maxSize: full }))).tc).toBe(false);
    expect(decode(buildResponse(q, spec(forty.slice(0, 31), { maxSize: full }))).tc).toBe(true);
  });

  it('never goes below 512 even when asked to', () => {
    const q = parsed(buildQuery('big.app', RRType.A));
    expect(decode(buildResponse(q, spec(forty.slice(0, 10), { maxSize: 100 }))).answers).toHaveLength(10);
  });
});

describe('error responses', () => {
  it('FORMERR for an unreadable question: bare header, id and RD echoed', () => {
    const msg = buildQuery('web', RRType.A, { id: 99 });
    msg[5] = 2; // QDCOUNT 2
    const r = parseQuery(msg);
    expect(r.ok).toBe(false);
    const d = decode(errorResponse(r as Exclude<typeof r, ParsedQuery>)!);
    expect(d).toMatchObject({ id: 99, qr: true, rd: true, rcode: Rcode.FORMERR, question: undefined, answers: [] });
  });

  it('NOTIMP for another opcode echoes the opcode', () => {
    const d = decode(buildError(7, 0x2900, Rcode.NOTIMP));
    expect(d).toMatchObject({ id: 7, qr: true, opcode: 5, rd: true, rcode: Rcode.NOTIMP, question: undefined });
  });

  it('REFUSED for a CHAOS query echoes the question', () => {
    const r = parseQuery(buildQuery('version.bind', 16, { qclass: 3, id: 5 }));
    const d = decode(errorResponse(r as Exclude<typeof r, ParsedQuery>)!);
    expect(d).toMatchObject({ id: 5, rcode: Rcode.REFUSED, aa: false });
    expect(d.question).toEqual({ name: 'version.bind', type: 16, class: 3 });
  });

  it('BADVERS: rcode 0 in the header, extended rcode 1 in the OPT', () => {
    const msg = buildQuery('web', RRType.A, { edns: { udpSize: 1232 } });
    msg[msg.length - 5] = 1; // EDNS version 1
    const r = parseQuery(msg);
    const d = decode(errorResponse(r as Exclude<typeof r, ParsedQuery>)!);
    expect(d.rcode).toBe(0);
    expect(d.additional).toEqual([{ name: '', type: RRType.OPT, class: 1232, ttl: 0x01000000, data: '' }]);
  });

  it('drops responses and runts', () => {
    const response = buildQuery('web', RRType.A);
    response[2]! |= 0x80;
    for (const msg of [response, new Uint8Array(5)]) {
      const r = parseQuery(msg);
      expect(errorResponse(r as Exclude<typeof r, ParsedQuery>)).toBeUndefined();
    }
  });
});

describe('micro-benchmark', () => {
  it('parse + build for a typical A query', () => {
    const msg = buildQuery('web.frontend', RRType.A, { id: 1, edns: { udpSize: 1232 } });
    const answers = [A('10.0.0.5')];
    let bytes = 0;
    const run = (n: number) => {
      for (let i = 0; i < n; i++) {
        const q = parseQuery(msg);
        if (!q.ok) throw new Error('benchmark query did not parse');
        bytes += buildResponse(q, { rcode: 0, answers, ttl: 600, maxSize: responseLimit(q, 'udp'), authoritative: true }).length;
      }
    };
    run(20_000); // warm up the JIT
    // Five rounds of 200k; the median smooths out a GC pause or a busy neighbour.
    const n = 200_000;
    const rates: number[] = [];
    for (let round = 0; round < 5; round++) {
      const start = performance.now();
      run(n);
      rates.push((n / (performance.now() - start)) * 1000);
    }
    rates.sort((x, y) => x - y);
    const fmt = (rate: number) => Math.round(rate).toLocaleString('en');
    console.log(`dns parse+build (A query, EDNS, 1 answer): median ${fmt(rates[2]!)} ops/s, range ${fmt(rates[0]!)}-${fmt(rates[4]!)}, 5 x ${n}`);
    expect(bytes).toBeGreaterThan(0);
  });
});
