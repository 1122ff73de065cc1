import { createServer } from 'node:http';
import type { HostPort } from '@ctnet/core';
import type { Registry } from 'prom-client';

/** /metrics and /healthz of the agent (503 with the reason while unhealthy). */
export async function serveAgentHttp(at: HostPort, registry: Registry, health: () => string | undefined): Promise<() => Promise<void>> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
      return;
    }
    if (path === '/healthz') {
      const problem = health();
      res.writeHead(problem ? 503 : 200, { 'content-type': 'text/plain' }).end(`${problem ?? 'ok'}\n`);
      return;
    }
    res.writeHead(404).end('not found: try /metrics or /healthz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, resolve);
  });
  return () => new Promise((resolve) => server.close(() => resolve()));
}
