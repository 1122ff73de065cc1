/**
 * The three drivers side by side in a 3-host lab: time from invoking `ctmgr run -d` to the new
 * container answering a ping from a sandbox on h1 (p50/p99 over RUNS runs per driver), and the
 * round trip once it runs, beside the peer every path is built on: two host namespaces pinging
 * each other over the lab's underlay.
 * - overlay: h1 -> a new container on h3, over VXLAN
 * - bridge:  h1 -> a new container on h1 (a bridge network is local to its host)
 * - macvlan: h1 -> a new container on h3, directly on the underlay segment
 * Root needed.
 *
 *   npm run bench:local [-- --smoke]        (RUNS=15)
 */
import { labUnavailableReason, startLab, type Lab } from '../test/src/lab/lab.js';
import { ok, waitNodesReady, firstReply } from './support/lab.js';
import { BenchSkipped, runBench } from './support/run.js';
import { pct } from './support/stats.js';


runBench(async (bench) => {
  const why = labUnavailableReason();
  if (why) throw new BenchSkipped(why);
  const RUNS = bench.smoke ? 1 : Number(process.env.RUNS ?? 15);
  const PINGS = bench.smoke ? 10 : 100;
  const lab: Lab = await startLab({ hosts: 3, agents: true, resyncSeconds: 30 });
  bench.defer(() => lab.destroy());
  await waitNodesReady(lab);
  const seg = lab.subnet.split('.').slice(0, 3).join('.');
  await ok(lab.ctmgr('network', 'create', '--subnet', '10.10.0.0/16', 'ov'));
  await ok(lab.ctmgr('network', 'create', '-d', 'bridge', '--subnet', '10.20.0.0/16', 'br'));
  await ok(lab.ctmgr('network', 'create', '-d', 'macvlan', '-o', 'parent=eth0', '--subnet', lab.subnet, '--gateway', lab.manager.addr, '--ip-range', `${seg}.128/25`, 'mv'));
  const [br] = JSON.parse(await ok(lab.ctmgr('network', 'inspect', 'br'))) as { hostSubnets: { node: string; subnet: string }[] }[];
  const h1 = br!.hostSubnets.find((h) => h.node === 'h1')!.subnet.split('.').slice(0, 3).join('.');
  const drivers = [
    { name: 'overlay', net: 'ov', node: 'h3', ip: (i: number) => `10.10.1.${10 + i}` },
    { name: 'bridge', net: 'br', node: 'h1', ip: (i: number) => `${h1}.${100 + i}` },
    { name: 'macvlan', net: 'mv', node: 'h3', ip: (i: number) => `${seg}.${150 + i}` },
  ];
  // one source sandbox on h1 per network
  for (const d of drivers) await ok(lab.ctmgr('run', '-d', '--name', `src-${d.name}`, '--network', d.net, '--node', 'h1', '--', 'sleep', 'infinity'));
  for (let i = 0; i < 100 && (await lab.ctagent('h1', 'exec', 'src-macvlan', '--', 'true')).code !== 0; i++) await new Promise((r) => setTimeout(r, 100));
  const nsOf = async (name: string) => {
    const ns = new RegExp(`^${name}\\s.*? (\\S+-s1-\\S+) `, 'm').exec((await lab.ctagent('h1', 'ps')).stdout)?.[1];
    if (!ns) throw new Error(`sandbox of ${name} not found`);
    return ns;
  };
  /** Average round trip of PINGS pings, 10 ms apart. */
  const rtt = async (run: Promise<{ code: number; stdout: string; stderr: string }>) => {
    const out = await ok(run);
    const m = /= [\d.]+\/([\d.]+)\//.exec(out);
    if (!m) throw new Error(`no ping summary in ${out}`);
    return Number(m[1]);
  };
  const pingArgs = (ip: string) => ['ping', '-q', '-c', String(PINGS), '-i', '0.01', '-n', ip];

  const rows: string[][] = [];
  const peer = await rtt(lab.exec('h1', ...pingArgs(lab.hosts[2]!.addr)));
  rows.push(['underlay host h1 -> h3 (peer)', '-', '-', peer.toFixed(3), '100%']);
  for (const d of drivers) {
    const ns = await nsOf(`src-${d.name}`);
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const pinger = firstReply(ns, d.ip(i));
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      await ok(lab.ctmgr('run', '-d', '--name', `${d.name}${i}`, '--network', d.net, '--node', d.node, '--ip', d.ip(i), '--', 'sleep', 'infinity'));
      times.push((await pinger) - t0);
    }
    const avg = await rtt(lab.execIn(ns, ...pingArgs(d.ip(0))));
    rows.push([`${d.name}: h1 -> ${d.node}`, pct(times, 0.5).toFixed(0), pct(times, 0.99).toFixed(0), avg.toFixed(3), `${Math.round((peer / avg) * 100)}%`]);
  }
  console.log(`\nlocal drivers: ctmgr run -d -> first ping reply (${RUNS} runs each, from invoking the CLI), and ping round trip once running${bench.smoke ? ' (smoke: figures mean nothing)' : ''}`);
  const head = ['path', 'run->ping p50 ms', 'p99 ms', 'RTT avg ms', 'peer RTT / RTT'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log([line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
  console.log(JSON.stringify({ benchmark: 'local-drivers', smoke: bench.smoke, runs: RUNS, head, rows }));
});

