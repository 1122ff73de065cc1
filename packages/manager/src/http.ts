import { createServer, type Server } from 'node:http';
import type { HostPort } from '@ctnet/core';
import type { Registry } from 'prom-client';

/** /metrics (Prometheus text) and /healthz (200 when healthy, 503 with the reason otherwise). */
export async function startHttpServer(
  at: HostPort,
  registry: Registry,
  health: () => Promise<{ ok: boolean; detail: string }>,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
    } else if (path === '/healthz') {
      health().then(
        (h) => {
          res.writeHead(h.ok ? 200 : 503, { 'content-type': 'text/plain' });
          res.end(`${h.detail}\n`);
        },
        (err: unknown) => {
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end(`${String(err)}\n`);
        },
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found: try /metrics or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : at.port;
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
