import { describe, it, expect } from 'vitest';
import { expectInvalid } from '../testing/expect-invalid.js';
import { createTcpFramer, frameTcp } from './tcp.js';

const bytes = (...values: number[]) => new Uint8Array(values);
const msg = (n: number, fill: number) => new Uint8Array(n).fill(fill);
const join = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
const list = (messages: Uint8Array[]) => messages.map((m) => Array.from(m));

describe('TCP framing', () => {
  it('frameTcp prefixes the length, big-endian', () => {
    expect(Array.from(frameTcp(bytes(1, 2, 3)))).toEqual([0, 3, 1, 2, 3]);
    expect(Array.from(frameTcp(msg(300, 7)).subarray(0, 2))).toEqual([1, 44]);
    expectInvalid(() => frameTcp(new Uint8Array(65536)), /too large for TCP/);
  });

  it('splits several messages in one chunk, without copying', () => {
    const chunk = join(frameTcp(msg(12, 1)), frameTcp(msg(20, 2)), frameTcp(msg(1, 3)));
    const r = createTcpFramer().push(chunk);
    expect(r.error).toBeUndefined();
    expect(list(r.messages)).toEqual([Array(12).fill(1), Array(20).fill(2), [3]]);
    expect(r.messages[0]!.buffer).toBe(chunk.buffer);
  });

  it('reassembles a stream fed one byte at a time, the length prefix split too', () => {
    const stream = join(frameTcp(msg(30, 4)), frameTcp(msg(300, 5)));
    const framer = createTcpFramer();
    const got: Uint8Array[] = [];
    for (let i = 0; i < stream.length; i++) {
      const r = framer.push(stream.subarray(i, i + 1));
      expect(r.error).toBeUndefined();
      got.push(...r.messages);
      if (i === 0) expect(framer.buffered).toBe(1);
      if (i === 10) expect(framer.buffered).toBe(11);
    }
    expect(list(got)).toEqual([Array(30).fill(4), Array(300).fill(5)]);
    expect(framer.buffered).toBe(0);
  });

  it('handles a message whose end shares a chunk with the next ones', () => {
    const stream = join(frameTcp(msg(100, 6)), frameTcp(msg(5, 7)), frameTcp(msg(9, 8)));
    const framer = createTcpFramer();
    const first = framer.push(stream.subarray(0, 50));
    const second = framer.push(stream.subarray(50, 106));
    const third = framer.push(stream.subarray(106));
    expect(first.messages).toEqual([]);
    expect(list(second.messages)).toEqual([Array(100).fill(6)]);
    expect(list(third.messages)).toEqual([Array(5).fill(7), Array(9).fill(8)]);
  });

  it('holds at most 64 KiB + 2 bytes for the largest incomplete message', () => {
    const framer = createTcpFramer();
    const r = framer.push(join(bytes(0xff, 0xff), msg(65534, 9)));
    expect(r.messages).toEqual([]);
    expect(framer.buffered).toBe(65536);
    const done = framer.push(bytes(9));
    expect(done.messages[0]!.length).toBe(65535);
    expect(framer.buffered).toBe(0);
  });

  it('rejects a zero length, keeping messages before it, and stays broken', () => {
    const framer = createTcpFramer();
    const r = framer.push(join(frameTcp(msg(12, 1)), bytes(0, 0), frameTcp(msg(12, 2))));
    expect(r.error).toBe('zero-length');
    expect(list(r.messages)).toEqual([Array(12).fill(1)]);
    expect(framer.push(frameTcp(msg(12, 3)))).toEqual({ messages: [], error: 'zero-length' });
  });

  it('rejects a zero length split across chunks', () => {
    const framer = createTcpFramer();
    expect(framer.push(bytes(0)).error).toBeUndefined();
    expect(framer.push(bytes(0, 0, 12)).error).toBe('zero-length');
  });
});
