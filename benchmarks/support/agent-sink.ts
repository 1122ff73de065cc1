/**
 * A stand-in agent for benchmarks: registers a node over a real agent stream, acks what it
 * receives, and counts events. Runs as its own process, as real agents do on their hosts.
 *   tsx support/agent-sink.ts MANAGER_ADDR NODE_NAME < credential.json   ({ caPem, certPem, keyPem })
 */
import { AgentServiceClient, clientCredentials, clientOptions, type ManagerMessage } from '@ctnet/proto';

const [addr, name] = process.argv.slice(2) as [string, string];
let input = '';
for await (const chunk of process.stdin) input += String(chunk);
const call = new AgentServiceClient(addr, clientCredentials(JSON.parse(input)), clientOptions()).connect();
call.write({ msg: { $case: 'hello', value: { node: { name, addr: '192.168.99.1', hostname: name, labels: {}, routes: [], registeredAt: '', problems: {}, dockerNetworks: {} }, resumeRevision: 0 } } });
call.on('data', (m: ManagerMessage) => {
  const rev = m.msg?.$case === 'snapshot' ? m.msg.value.revision : m.msg?.$case === 'changes' ? m.msg.value.revision : 0;
  if (rev) call.write({ msg: { $case: 'ack', value: { revision: rev } } });
});
call.on('error', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
