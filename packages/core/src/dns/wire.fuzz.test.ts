import { describe, it, expect } from 'vitest';
import { buildResponse, errorResponse } from './answer.js';
import { RRType } from './constants.js';
import { buildQuery } from './query.js';
import { createTcpFramer } from './tcp.js';
import { type ParseResult, parseQuery, responseLimit } from './wire.js';

/** mulberry32: a seeded PRNG, so a failing packet can be reproduced from its index. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = prng(0xc7e7);
const int = (n: number) => Math.floor(rand() * n);
const randomBytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));

const seeds = [
  buildQuery('web', RRType.A),
  buildQuery('Web.Front-End.app', RRType.AAAA, { id: 0xffff }),
  buildQuery('5.0.10.10.in-addr.arpa', RRType.PTR, { edns: { udpSize: 1232, do: true } }),
  buildQuery('', RRType.NS, { edns: { udpSize: 512 } }),
  buildQuery(['a'.repeat(63), 'b'.repeat(63), 'c'.repeat(63), 'd'.repeat(61)].join('.'), RRType.A),
  // EDNS with a cookie option
  (() => {
    const q = buildQuery('api.internal', RRType.A, { edns: { udpSize: 4096 } });
    const out = new Uint8Array(q.length + 12);
    out.set(q);
    out[q.length - 1] = 12;
    out.set([0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8], q.length);
    return out;
  })(),
];

function mutate(seed: Uint8Array): Uint8Array {
  let msg = seed.slice();
  const rounds = 1 + int(4);
  for (let r = 0; r < rounds; r++) {
    switch (int(7)) {
      case 0: // bit flips
        for (let i = int(8) + 1; i > 0 && msg.length > 0; i--) msg[int(msg.length)]! ^= 1 << int(8);
        break;
      case 1: // truncate
        msg = msg.subarray(0, int(msg.length + 1));
        break;
      case 2: // extend with garbage
        msg = Uint8Array.from([...msg, ...randomBytes(int(40))]);
        break;
      case 3: // a random byte in the question, often a label length
        if (msg.length > 12) msg[12 + int(msg.length - 12)] = int(256);
        break;
      case 4: // a compression pointer somewhere in the question, often at or near itself
        if (msg.length > 13) {
          const at = 12 + int(msg.length - 13);
          const target = rand() < 0.5 ? at : int(msg.length);
          msg[at] = 0xc0 | ((target >> 8) & 0x3f);
          msg[at + 1] = target & 0xff;
        }
        break;
      case 5: // header counts
        if (msg.length >= 12) msg[4 + int(8)] = [0, 1, 2, 255][int(4)]!;
        break;
      default: // EDNS fields: size, version, rdlength
        if (msg.length > 20) msg[msg.length - 1 - int(10)] = int(256);
    }
  }
  return msg;
}

/** A header that passes the first checks, then random bytes: most of the fuzzing reaches the name walk. */
function plausible(): Uint8Array {
  const body = randomBytes(int(300));
  const header = [int(256), int(256), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, int(2)];
  return Uint8Array.from([...header, ...body]);
}

/** Names that end in pointers: to themselves, to each other, to the header. */
function pointerLoop(): Uint8Array {
  const header = [0, 1, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
  const name: number[] = [];
  for (let i = int(3); i > 0; i--) name.push(3, 0x61, 0x62, 0x63);
  const here = 12 + name.length;
  const target = [here, 12, 0, here - 2, int(64)][int(5)]!;
  return Uint8Array.from([...header, ...name, 0xc0, target, 0, 1, 0, 1]);
}

function packet(i: number): Uint8Array {
  if (i < 10_000) return randomBytes(int(8) === 0 ? int(12) : int(600));
  if (i < 20_000) return plausible();
  if (i < 45_000) return mutate(seeds[i % seeds.length]!);
  return pointerLoop();
}

const KINDS = new Set(['short', 'response', 'formerr', 'notimp', 'badclass', 'badvers']);

function check(msg: Uint8Array, r: ParseResult): void {
  if (r.ok) {
    if (r.qnameWire.length > 255 || r.questionEnd > msg.length || /[A-Z]/.test(r.qname)) {
      throw new Error(`bad parse of ${Array.from(msg)}`);
    }
    const limit = responseLimit(r, 'udp');
    const answers = Array.from({ length: int(60) }, (_, k) => ({ type: 'A' as const, addr: k }));
    const out = buildResponse(r, { rcode: 0, answers, ttl: 60, maxSize: limit, authoritative: true });
    if (out.length > limit || (out[2]! & 0x80) === 0 || ((out[0]! << 8) | out[1]!) !== r.id) {
      throw new Error(`bad response to ${Array.from(msg)}`);
    }
    return;
  }
  if (!KINDS.has(r.kind)) throw new Error(`unknown error kind ${r.kind}`);
  const out = errorResponse(r);
  if (out !== undefined && (out.length > 512 || ((out[0]! << 8) | out[1]!) !== r.id)) {
    throw new Error(`bad error response to ${Array.from(msg)}`);
  }
}

describe('fuzz', () => {
  it('50,000 random, mutated and pointer-looped packets: every one parses or errors, none throws', () => {
    const seen = new Map<string, number>();
    for (let i = 0; i < 50_000; i++) {
      const msg = packet(i);
      let r: ParseResult;
      try {
        r = parseQuery(msg);
        check(msg, r);
      } catch (err) {
        throw new Error(`packet ${i} [${Array.from(msg).join(',')}]: ${String(err)}`);
      }
      const key = r.ok ? 'ok' : `${r.kind}/${r.reason}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    console.log('fuzz outcomes:', Object.fromEntries([...seen].sort((a, b) => b[1] - a[1])));
    // The fuzzer must reach deep: valid parses, name errors, pointer refusals and EDNS errors.
    for (const key of ['ok', 'short/too-short', 'formerr/compression-in-question', 'formerr/label-type', 'formerr/truncated-question']) {
      expect(seen.get(key), key).toBeGreaterThan(0);
    }
    expect([...seen.keys()].filter((k) => k.includes('opt')).length).toBeGreaterThan(1);
  });

  it('the TCP framer survives random streams in random chunks, holding at most 64 KiB + 2', () => {
    for (let s = 0; s < 200; s++) {
      const framer = createTcpFramer();
      const stream = randomBytes(int(20_000));
      for (let at = 0; at < stream.length; ) {
        const end = at + 1 + int(3000);
        const r = framer.push(stream.subarray(at, end));
        expect(framer.buffered).toBeLessThanOrEqual(65537);
        for (const m of r.messages) expect(m.length).toBeGreaterThan(0);
        if (r.error !== undefined) break;
        at = end;
      }
    }
  });
});
