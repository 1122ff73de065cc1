/**
 * Programming rate on one host: a network with 10,000 remote endpoints, full sync from empty
 * and an incremental burst of 1,000, in entries/s (FDB + neighbour), beside the raw
 * `ip -batch` / `bridge -batch` rate for the same entries in the same run (the limit).
 * ctnet's figure is a whole reconcile as the agent runs it: plan (pure) against the kernel read
 * back (at start) or against the projection of its last clean apply (on a change), then apply.
 * Goal: >= 70% of raw. Runs inside a throwaway network namespace (root needed).
 *
 *   npm run bench:programming [-- --smoke]        (smoke: 300 endpoints, a burst of 50)
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { desiredHost, planOverlays, projectApplied, macForIPv4, type ActualHost, type ClusterState, type Endpoint, type Network, type Node } from '@ctnet/core';
import { applyOps, createExecaRunner, readActual, type CommandRunner } from '@ctnet/agent';
import { labUnavailableReason } from '../test/src/lab/lab.js';
import { BenchSkipped, runBench } from './support/run.js';

const ns = `ctb${randomBytes(3).toString('hex')}-p`;
const sh = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();

/** A runner that runs every command inside the benchmark's namespace. */
function nsRunner(inner: CommandRunner): CommandRunner {
  return { run: (cmd, args, opts) => (cmd === 'ip' || cmd === 'bridge' ? inner.run(cmd, ['-n', ns, ...args], opts) : inner.run(cmd, args, opts)) };
}

const net: Network = {
  id: 'benchnet00000000', name: 'bench', driver: 'overlay', vni: 4242, subnet: '10.0.0.0/8', gateway: '10.0.0.1', ipRange: '10.0.0.0/8',
  auxAddresses: {}, attachable: false, internal: false, mtu: 0, parent: '', options: {}, labels: {}, createdAt: '',
};
const ipOf = (i: number) => 0x0a000000 + 16 + i; // 10.0.0.16 + i
const fmt = (a: number) => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.');
function state(count: number): ClusterState {
  const nodes = new Map<string, Node>([['me', { name: 'me', addr: '192.0.2.1', hostname: 'me', labels: {}, routes: [], registeredAt: '' }]]);
  for (let n = 0; n < 20; n++) nodes.set(`r${n}`, { name: `r${n}`, addr: `192.0.2.${10 + n}`, hostname: `r${n}`, labels: {}, routes: [], registeredAt: '' });
  const endpoints = new Map<string, Endpoint>();
  const add = (name: string, node: string, addr: number) =>
    endpoints.set(`${net.id}/${name}`, { id: `${name}-id`, networkId: net.id, name, node, ip: fmt(addr), mac: macForIPv4(addr), aliases: [], createdAt: '', container: '' });
  add('local', 'me', 0x0a000002);
  for (let i = 0; i < count; i++) add(`e${i}`, `r${i % 20}`, ipOf(i));
  return { networks: new Map([[net.id, net]]), nodes, endpoints, containers: new Map() };
}

/**
 * One reconcile as the agent runs it: against the kernel read back (start, resync), or, after
 * a change, against the projection of its last clean apply.
 */
async function reconcile(runner: CommandRunner, count: number, believed?: ActualHost): Promise<{ secs: number; entries: number; believed: ActualHost }> {
  const cluster = state(count); // the agent holds this already (it is the streamed state): not timed
  const t0 = performance.now();
  const desired = desiredHost(cluster, { node: 'me', advertiseAddr: '192.0.2.1', underlayMtu: 1500, vxlanPort: 4789 }, 'x-');
  const actual = believed ?? (await readActual(runner));
  const plan = planOverlays(desired, actual);
  const result = await applyOps(runner, plan);
  if (result.failed.length) throw new Error(`apply failed: ${JSON.stringify(result.failed.slice(0, 3))}`);
  const secs = (performance.now() - t0) / 1000;
  return { secs, entries: plan.filter((o) => o.op === 'fdb-replace' || o.op === 'neigh-replace').length, believed: projectApplied(desired, actual) };
}

function raw(from: number, count: number, dev: string): number {
  const fdb: string[] = [];
  const neigh: string[] = [];
  for (let i = from; i < from + count; i++) {
    fdb.push(`fdb replace ${macForIPv4(ipOf(i))} dev ${dev} dst 192.0.2.${10 + (i % 20)} self permanent`);
    neigh.push(`neigh replace ${fmt(ipOf(i))} lladdr ${macForIPv4(ipOf(i))} dev ${dev} nud permanent`);
  }
  const t0 = performance.now();
  sh('ip', ['-n', ns, '-batch', '-'], `${neigh.join('\n')}\n`);
  sh('bridge', ['-n', ns, '-batch', '-'], `${fdb.join('\n')}\n`);
  return (performance.now() - t0) / 1000;
}

function setUpNamespace(): void {
  sh('ip', ['-n', ns, '-batch', '-'], 'link set lo up\nlink add u0 type veth peer name u1\naddr add 192.0.2.1/24 dev u0\nlink set u0 up\nlink set u1 up\n');
}

runBench(async (bench) => {
  // The lab's check covers what this needs too: root, iproute2, a namespace can be made.
  const why = labUnavailableReason();
  if (why) throw new BenchSkipped(why);
  const N = bench.smoke ? 300 : 10_000;
  const BURST = bench.smoke ? 50 : 1_000;
  sh('ip', ['netns', 'add', ns]);
  bench.defer(() => sh('ip', ['netns', 'del', ns]));
  setUpNamespace();
  const runner = nsRunner(createExecaRunner());
  // raw: a bare VXLAN device, the same entries, straight into ip/bridge batches
  sh('ip', ['-n', ns, 'link', 'add', 'rawvx', 'type', 'vxlan', 'id', '7', 'dstport', '4789', 'local', '192.0.2.1', 'nolearning', 'proxy']);
  const rawFull = raw(0, N, 'rawvx');
  const rawBurst = raw(N, BURST, 'rawvx');
  sh('ip', ['-n', ns, 'link', 'del', 'rawvx']);
  // ctnet: full sync from an empty host, then a burst of BURST more
  // warm the JIT as a long-running agent would be, on a small network that is then removed
  await reconcile(runner, bench.smoke ? 50 : 500);
  await applyOps(runner, [{ op: 'link-del', name: 'ctvx-benchnet' }, { op: 'link-del', name: 'ctbr-benchnet' }]);
  const full = await reconcile(runner, N); // agent start: reads the (empty) kernel back
  const burst = await reconcile(runner, N + BURST, full.believed); // a change: plans against its projection
  const idle = await reconcile(runner, N + BURST); // a resync: reads 2 × (N + BURST) entries back, plans, nothing to apply

  const rows = [
    { what: `full sync, ${N} remote endpoints`, entries: full.entries, ctnet: full.entries / full.secs, raw: (2 * N) / rawFull },
    { what: `incremental burst of ${BURST}`, entries: burst.entries, ctnet: burst.entries / burst.secs, raw: (2 * BURST) / rawBurst },
  ];
  console.log(`\nProgramming rate on one host (FDB + neighbour entries; ctnet = read back + plan + apply)${bench.smoke ? ' (smoke: figures mean nothing)' : ''}`);
  console.log('| case | entries | raw ip/bridge -batch entries/s (limit) | ctnet entries/s | of raw | goal >= 70% |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.what} | ${r.entries} | ${r.raw.toFixed(0)} | ${r.ctnet.toFixed(0)} | ${((100 * r.ctnet) / r.raw).toFixed(0)}% | ${r.ctnet / r.raw >= 0.7 ? 'met' : 'not met'} |`);
  }
  console.log(`converged resync over ${2 * (N + BURST)} entries (read back + plan, nothing to apply): ${(idle.secs * 1000).toFixed(0)} ms, ${idle.entries} ops`);
  console.log(JSON.stringify({ benchmark: 'programming-rate', smoke: bench.smoke, rows, resyncMs: idle.secs * 1000 }));
});
