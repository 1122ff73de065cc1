import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { CtnetError, dockerErrorBody, parseDockerBody, parseDockerMethod, type DockerMethod, type Logger } from '@ctnet/core';
import { listenPrivate } from '../unix-socket.js';

/** A request body larger than this is refused unread (Docker's largest calls are a few KiB). */
const MAX_BODY = 1 << 20;
/**
 * dockerd waits for a plugin without any timeout of its own: a call that hangs would hang
 * `docker run` and hold dockerd's locks. Every call is answered within this, an error if need be.
 */
const CALL_DEADLINE_MS = 60_000;
const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';

export type DockerCallHandler = (method: DockerMethod, body: Record<string, unknown>) => Promise<Record<string, unknown>>;

/**
 * The plugin socket dockerd discovers as the "ctnet" network and IPAM driver: DIR/ctnet.sock,
 * HTTP with a JSON body per call. Root only (0600): whoever reaches it can plug interfaces
 * into the cluster network. Errors are answered with status 200 and Err/Error set, which is how
 * dockerd carries the message to the docker CLI ("remote: …").
 */
export async function serveDockerPlugin(
  dir: string,
  handle: DockerCallHandler,
  log: Logger,
  /** Each call's method, outcome and duration (the agent's metrics). */
  onCall: (method: DockerMethod, ok: boolean, seconds: number) => void = () => undefined,
): Promise<{ path: string; close(): Promise<void> }> {
  const path = join(dir, 'ctnet.sock');
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const method = parseDockerMethod(req.url ?? '');
    const answer = (status: number, body: Record<string, unknown>) => {
      if (res.headersSent) return;
      const text = JSON.stringify(body);
      res.writeHead(status, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(text) });
      res.end(text);
    };
    if (req.method !== 'POST' || method === undefined) {
      req.resume();
      answer(404, { Err: `ctnet plugin: no such call ${req.method} ${(req.url ?? '').slice(0, 100)}` });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (d: Buffer) => {
      if (refused) return;
      size += d.length;
      if (size > MAX_BODY) {
        refused = true;
        // Answered at once; the rest is read and dropped (within requestTimeout), never kept.
        answer(200, dockerErrorBody(method, `ctnet plugin: request body over ${MAX_BODY} bytes refused`));
        return;
      }
      chunks.push(d);
    });
    req.on('aborted', () => (refused = true));
    req.on('end', () => {
      if (refused) return;
      let body: Record<string, unknown>;
      try {
        body = parseDockerBody(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        answer(200, dockerErrorBody(method, `ctnet: ${CtnetError.from(err).message}`));
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`ctnet: ${method} did not finish within ${CALL_DEADLINE_MS / 1000} s; see the ctagent log on this host`)), CALL_DEADLINE_MS);
      });
      const t0 = Date.now();
      Promise.race([handle(method, body), deadline]).then(
        (out) => {
          clearTimeout(timer);
          onCall(method, true, (Date.now() - t0) / 1000);
          answer(200, out);
        },
        (err: unknown) => {
          clearTimeout(timer);
          onCall(method, false, (Date.now() - t0) / 1000);
          const e = CtnetError.from(err);
          log.warn('docker call refused', { method, code: e.code, error: e.message });
          answer(200, dockerErrorBody(method, `ctnet: ${e.message}`));
        },
      );
    });
  });
  server.requestTimeout = 10_000; // a client that never finishes its request is cut off
  const close = await listenPrivate(server, path, { what: 'the Docker plugin socket', taken: 'stop it, or give this agent another --docker-plugin-dir' });
  log.info('Docker plugin socket ready', { path });
  return { path, close };
}
