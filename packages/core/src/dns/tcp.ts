import { invalidArgument } from '../errors.js';
import { TCP_MAX_MESSAGE } from './constants.js';

/**
 * DNS over TCP prefixes each message with its length in two bytes (RFC 1035 §4.2.2, RFC 7766).
 * The framer splits a byte stream into messages. Messages wholly inside one chunk are returned
 * as subarrays of it (no copy: do not reuse a chunk's memory while its messages are in use;
 * Node's default socket 'data' buffers are never reused); a message split
 * across chunks is copied into a buffer of exactly its length. So at most 65535 + 2 bytes are
 * ever held for an incomplete message: the bound on buffering follows from the 16-bit prefix.
 */

export type TcpFramerError = 'zero-length';

export interface TcpPushResult {
  /** Complete messages, in stream order. */
  readonly messages: Uint8Array[];
  /** Set when the stream is broken: answer `messages`, then close the connection. */
  readonly error: TcpFramerError | undefined;
}

export interface TcpFramer {
  push(chunk: Uint8Array): TcpPushResult;
  /** Bytes held for an incomplete message (prefix included); at most 65537. */
  readonly buffered: number;
}

export function createTcpFramer(): TcpFramer {
  let prefixBytes = 0; // 0, 1 or 2 length bytes seen for the next message
  let firstByte = 0;
  let pending: Uint8Array | undefined; // the message being assembled, sized to its length
  let filled = 0;
  let broken = false;

  function push(chunk: Uint8Array): TcpPushResult {
    const messages: Uint8Array[] = [];
    if (broken) return { messages, error: 'zero-length' };
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (pending === undefined) {
        // Read the length prefix, which may itself be split between chunks.
        let length: number;
        if (prefixBytes === 0 && i + 2 <= n) {
          length = (chunk[i]! << 8) | chunk[i + 1]!;
          i += 2;
        } else if (prefixBytes === 0) {
          firstByte = chunk[i++]!;
          prefixBytes = 1;
          break;
        } else {
          length = (firstByte << 8) | chunk[i++]!;
        }
        prefixBytes = 0;
        if (length === 0) {
          broken = true;
          return { messages, error: 'zero-length' };
        }
        if (i + length <= n) {
          messages.push(chunk.subarray(i, i + length));
          i += length;
          continue;
        }
        pending = new Uint8Array(length);
        filled = 0;
      }
      const take = Math.min(pending.length - filled, n - i);
      pending.set(chunk.subarray(i, i + take), filled);
      filled += take;
      i += take;
      if (filled === pending.length) {
        messages.push(pending);
        pending = undefined;
      }
    }
    return { messages, error: undefined };
  }

  return {
    push,
    get buffered() {
      return pending !== undefined ? 2 + filled : prefixBytes;
    },
  };
}

/** Prefixes a message with its 2-byte length for sending over TCP. */
export function frameTcp(msg: Uint8Array): Uint8Array {
  if (msg.length > TCP_MAX_MESSAGE) {
    throw invalidArgument(`DNS message of ${msg.length} bytes is too large for TCP; the limit is ${TCP_MAX_MESSAGE}`);
  }
  const out = new Uint8Array(msg.length + 2);
  out[0] = msg.length >>> 8;
  out[1] = msg.length;
  out.set(msg, 2);
  return out;
}
