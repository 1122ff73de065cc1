/**
 * A client process for the IPAM benchmark's TLS row: creates N endpoints on NETWORK with
 * CONCURRENCY calls in flight and prints {"rate": allocations per second}. The credential
 * comes as JSON on stdin ({ caPem, certPem, keyPem }), or "plaintext".
 *   tsx support/ipam-client.ts ADDR NETWORK N CONCURRENCY FIRST_INDEX < credential
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { clientCredentials, clientOptions, CreateEndpointRequest, ManagerServiceClient } from '@ctnet/proto';

const [addr, network, n, concurrency, first] = process.argv.slice(2) as [string, string, string, string, string];
let input = '';
for await (const chunk of process.stdin) input += String(chunk);
const creds = input.trim() === 'plaintext' ? credentials.createInsecure() : clientCredentials(JSON.parse(input));
const client = new ManagerServiceClient(addr, creds, clientOptions());
const create = (name: string) =>
  new Promise<void>((resolve, reject) =>
    client.createEndpoint(CreateEndpointRequest.fromPartial({ network, node: 'bench', name }), new Metadata(), { deadline: Date.now() + 30_000 }, (e) => (e ? reject(e) : resolve())),
  );
await create(`w${first}`); // the connection (and its handshake) before the clock starts
let next = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: Number(concurrency) }, async () => {
    for (let i = next++; i < Number(n); i = next++) await create(`c${Number(first) + i}`);
  }),
);
console.log(JSON.stringify({ rate: Number(n) / ((performance.now() - t0) / 1000) }));
client.close();
