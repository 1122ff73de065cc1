/**
 * A client already connected to the manager, for "from the API call" columns: reads lines
 * `run NAME NETWORK NODE IP` on stdin and answers each with one JSON line
 * {"t0": ms since the epoch just before the call, "ms": the call's duration}. Started inside
 * the manager's namespace; the credential comes as the admin directory.
 *   node --import tsx support/api-runner.ts ADDR ADMIN_DIR
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { Metadata } from '@grpc/grpc-js';
import { clientCredentials, clientOptions, ManagerServiceClient, RunContainerRequest } from '@ctnet/proto';

const [addr, adminDir] = process.argv.slice(2) as [string, string];
const read = (f: string) => readFileSync(join(adminDir, f), 'utf8');
const client = new ManagerServiceClient(addr, clientCredentials({ caPem: read('ca.pem'), certPem: read('cert.pem'), keyPem: read('key.pem') }), clientOptions());
const call = <T>(fn: (cb: (e: Error | null, r: T) => void) => void) => new Promise<T>((resolve, reject) => fn((e, r) => (e ? reject(e) : resolve(r))));
// The connection and its TLS handshake before any clock starts.
await call((cb) => client.listNodes({}, new Metadata(), { deadline: Date.now() + 30_000 }, cb));
console.log(JSON.stringify({ ready: true }));
for await (const line of createInterface({ input: process.stdin })) {
  const [verb, name, network, node, ip] = line.trim().split(/\s+/);
  if (verb !== 'run') continue;
  const t0 = Date.now();
  const s = performance.now();
  try {
    await call((cb) =>
      client.runContainer(RunContainerRequest.fromPartial({ name, network, node, ip, cmd: ['sleep', 'infinity'] }), new Metadata(), { deadline: Date.now() + 30_000 }, cb),
    );
    console.log(JSON.stringify({ t0, ms: performance.now() - s }));
  } catch (err) {
    console.log(JSON.stringify({ t0, error: String(err) }));
  }
}
client.close();
