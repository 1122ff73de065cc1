import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '@ctnet/core';
import { listenPrivate } from '../unix-socket.js';

/** Bytes a call may send (environment and configuration; the shim's own bound is 4 MiB of configuration). */
const MAX_REQUEST = (4 << 20) + (64 << 10);
/** A client that sends nothing for this long is cut off (the handler's own work is not counted). */
const IDLE_MS = 10_000;
const HEADER = 'CTNET-CNI 1\n';

export type CniCallHandler = (env: Readonly<Record<string, string>>, stdin: string) => Promise<{ ok: boolean; output: string }>;

/**
 * The request as the shim sends it: a header line, NAME=VALUE\0 per CNI_* variable, an empty
 * entry, then stdin to the end. Undefined while incomplete; throws when it is not ours.
 */
export function parseShimRequest(buf: Buffer, complete: boolean): { env: Record<string, string>; stdin: string } | undefined {
  if (buf.length < HEADER.length) {
    if (complete) throw new Error('short request');
    return undefined;
  }
  if (buf.subarray(0, HEADER.length).toString('latin1') !== HEADER) throw new Error('not a ctnet CNI request (bad header)');
  if (!complete) return undefined;
  const env: Record<string, string> = {};
  let at = HEADER.length;
  for (;;) {
    const end = buf.indexOf(0, at);
    if (end < 0) throw new Error('request ends inside the environment');
    if (end === at) {
      at = end + 1;
      break;
    }
    const entry = buf.subarray(at, end).toString('utf8');
    const eq = entry.indexOf('=');
    if (eq > 0 && entry.startsWith('CNI_')) env[entry.slice(0, eq)] = entry.slice(eq + 1);
    at = end + 1;
  }
  return { env, stdin: buf.subarray(at).toString('utf8') };
}

/**
 * Serves the CNI plugin's calls on a unix socket only root can reach: its directory is made
 * 0700 and the socket 0600 (a CNI ADD plugs namespaces into the cluster network). A socket
 * file left by an earlier agent is replaced; one another live agent answers on is not.
 */
export async function serveCniSocket(path: string, handle: CniCallHandler, log: Logger): Promise<{ close(): Promise<void> }> {
  // Half-open: the shim shuts down its side to mark the end of stdin, and still reads the answer.
  const server: Server = createServer({ allowHalfOpen: true }, (sock: Socket) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false; // answered already: what else arrives is never run
    sock.setTimeout(IDLE_MS, () => sock.destroy());
    const refuse = (why: string): void => {
      refused = true;
      log.warn('CNI socket: bad request', { error: why });
      sock.end('1');
    };
    sock.on('data', (d: Buffer) => {
      size += d.length;
      if (size > MAX_REQUEST) {
        sock.removeAllListeners('data');
        refuse(`request larger than ${MAX_REQUEST} bytes`);
        return;
      }
      chunks.push(d);
      if (chunks.length === 1) {
        try {
          parseShimRequest(d, false);
        } catch (err) {
          sock.removeAllListeners('data');
          refuse(String(err));
        }
      }
    });
    sock.on('end', () => {
      if (refused) return;
      let req: { env: Record<string, string>; stdin: string } | undefined;
      try {
        req = parseShimRequest(Buffer.concat(chunks), true);
      } catch (err) {
        refuse(String(err));
        return;
      }
      if (!req) return;
      sock.setTimeout(0);
      handle(req.env, req.stdin).then(
        (res) => sock.end((res.ok ? '0' : '1') + res.output + (res.output ? '\n' : '')),
        (err: unknown) => {
          log.error('CNI call failed', { error: String(err) });
          sock.end('1');
        },
      );
    });
    sock.on('error', () => undefined); // the shim went away: nothing to answer
  });
  const close = await listenPrivate(server, path, { taken: 'stop it, or give this agent another --cni-socket', what: 'the CNI socket' });
  log.info('CNI socket ready', { path });
  return { close };
}
