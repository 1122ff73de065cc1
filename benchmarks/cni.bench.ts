/**
 * The CNI plugin beside Debian's bridge + host-local, on the same lab host in the same run:
 * ADD and DEL latency as a runtime sees it (namespace creation included in ADD, as the
 * published comparisons count it), p50/p99 over RUNS calls each, the two alternating. ctnet's
 * address comes from the cluster IPAM in etcd through the manager; host-local's from a file.
 * Then, for ctnet only: ADD with waitConverged, and ADD on h2 -> first ping reply from a
 * container on h1 over the overlay.
 * Published anchors (cni-benchmarks, 2018, per ADD): flannel-bridge 69 ms, Calico 163 ms,
 * bridge 231 ms, Weave 252 ms, Cilium 670 ms. Root needed.
 *
 *   npm run bench:cni [-- --smoke]        (RUNS=200)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { labUnavailableReason, startLab, REPO, type Lab } from '../test/src/lab/lab.js';
import { run } from '../test/src/lab/process.js';
import { firstReply, ok, waitNodesReady } from './support/lab.js';
import { BenchSkipped, runBench } from './support/run.js';
import { fmtMs, pct } from './support/stats.js';

const PLUGIN = join(REPO, 'packages/cni/dist/ctnet');
const BRIDGE = '/usr/lib/cni/bridge';

runBench(async (bench) => {
  const why = labUnavailableReason() ?? (existsSync(BRIDGE) ? undefined : 'Debian\'s CNI plugins are not installed (apt-get install containernetworking-plugins)');
  if (why) throw new BenchSkipped(why);
  if (!existsSync(PLUGIN)) throw new Error(`the plugin is not built (${PLUGIN}); run npm run build`);
  const RUNS = bench.smoke ? 3 : Number(process.env.RUNS ?? 200);
  const PINGS = bench.smoke ? 2 : Math.min(RUNS, 30);
  const lab: Lab = await startLab({ hosts: 2, agents: true, resyncSeconds: 30 });
  bench.defer(() => lab.destroy());
  await waitNodesReady(lab);
  await ok(lab.ctmgr('network', 'create', '--subnet', '10.50.0.0/16', 'pods'));
  const [h1, h2] = lab.hosts as [Lab['hosts'][number], Lab['hosts'][number]];
  let n = 0;
  const newNs = async () => {
    const ns = `${lab.prefix}-b${++n}`;
    await ok(run(['ip', 'netns', 'add', ns]));
    return ns;
  };
  /** One plugin call as a runtime on `host` makes it: its environment, the config on stdin. */
  const call = async (host: string, plugin: string, command: string, id: string, ns: string, conf: Record<string, unknown>, args = '') => {
    const r = await run(['nsenter', `--net=/run/netns/${host}`, '--', plugin], {
      env: { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: `/run/netns/${ns}`, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni', CNI_ARGS: args },
      input: JSON.stringify(conf),
      timeoutMs: 60_000,
    });
    if (r.code !== 0) throw new Error(`${plugin} ${command}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const ctnetConf = (host: string, extra: Record<string, unknown> = {}) => ({ cniVersion: '1.0.0', name: 'pods', type: 'ctnet', agentSocket: join(lab.workDir, host, 'cni.sock'), ...extra });
  const bridgeConf = {
    cniVersion: '1.0.0',
    name: 'bench-br',
    type: 'bridge',
    bridge: 'cnibr0',
    isGateway: true,
    ipam: { type: 'host-local', subnet: '10.60.0.0/16', dataDir: join(lab.workDir, 'host-local') },
  };
  const plugins = [
    { name: 'ctnet (cluster IPAM in etcd)', run: (id: string, ns: string, cmd: string) => call(h1.ns, PLUGIN, cmd, id, ns, ctnetConf('h1')) },
    { name: 'Debian bridge + host-local (peer)', run: (id: string, ns: string, cmd: string) => call(h1.ns, BRIDGE, cmd, id, ns, bridgeConf) },
  ];
  const add = plugins.map(() => [] as number[]);
  const del = plugins.map(() => [] as number[]);
  // One resident container each, as on any busy host: the bridge (and for ctnet the network's
  // VXLAN device and peers) exists before the measured calls, as bridge keeps cnibr0.
  const resident: { ns: string; p: (typeof plugins)[number]; id: string }[] = [];
  for (const [i, p] of plugins.entries()) resident.push({ ns: await newNs(), p, id: `resident-${i}` });
  for (const r of resident) await r.p.run(r.id, r.ns, 'ADD');
  bench.defer(async () => {
    for (const r of resident) await r.p.run(r.id, r.ns, 'DEL').catch(() => undefined);
  });
  for (let r = 0; r < RUNS; r++) {
    for (const [i, p] of plugins.entries()) {
      const id = `c${r}-${i}`;
      const t0 = performance.now();
      const ns = await newNs();
      await p.run(id, ns, 'ADD');
      const t1 = performance.now();
      await p.run(id, ns, 'DEL');
      const t2 = performance.now();
      await ok(run(['ip', 'netns', 'del', ns]));
      add[i]!.push(t1 - t0);
      del[i]!.push(t2 - t1);
    }
  }

  // waitConverged: ADD returns once every ready host has applied the endpoint.
  const converged: number[] = [];
  for (let r = 0; r < PINGS; r++) {
    const t0 = performance.now();
    const ns = await newNs();
    await call(h1.ns, PLUGIN, 'ADD', `w${r}`, ns, ctnetConf('h1', { waitConverged: true }));
    converged.push(performance.now() - t0);
    await call(h1.ns, PLUGIN, 'DEL', `w${r}`, ns, ctnetConf('h1'));
    await ok(run(['ip', 'netns', 'del', ns]));
  }

  // ADD on h2 -> first ping reply from a container on h1 (a fixed address: CNI_ARGS IP=).
  const src = await newNs();
  await call(h1.ns, PLUGIN, 'ADD', 'pinger', src, ctnetConf('h1'));
  const reach: number[] = [];
  for (let r = 0; r < PINGS; r++) {
    const ip = `10.50.200.${10 + (r % 200)}`;
    const pinger = firstReply(src, ip);
    await new Promise((res) => setTimeout(res, 200));
    const t0 = Date.now();
    const ns = await newNs();
    await call(h2.ns, PLUGIN, 'ADD', `p${r}`, ns, ctnetConf('h2'), `IgnoreUnknown=1;IP=${ip}`);
    reach.push((await pinger) - t0);
    await call(h2.ns, PLUGIN, 'DEL', `p${r}`, ns, ctnetConf('h2'));
    await ok(run(['ip', 'netns', 'del', ns]));
  }
  await call(h1.ns, PLUGIN, 'DEL', 'pinger', src, ctnetConf('h1'));

  const rows: string[][] = plugins.map((p, i) => [p.name, fmtMs(pct(add[i]!, 0.5)), fmtMs(pct(add[i]!, 0.99)), fmtMs(pct(del[i]!, 0.5)), fmtMs(pct(del[i]!, 0.99))]);
  rows.push(['ctnet ADD with waitConverged (2 hosts)', fmtMs(pct(converged, 0.5)), fmtMs(pct(converged, 0.99)), '-', '-']);
  rows.push(['ctnet ADD on h2 -> first ping from h1', fmtMs(pct(reach, 0.5)), fmtMs(pct(reach, 0.99)), '-', '-']);
  rows.push(['published (cni-benchmarks 2018): flannel 69, Calico 163, bridge 231, Weave 252, Cilium 670', '-', '-', '-', '-']);
  console.log(`\nCNI: ADD (namespace creation included) and DEL on one lab host, ${RUNS} calls each, alternating${bench.smoke ? ' (smoke: figures mean nothing)' : ''}`);
  const head = ['plugin', 'ADD p50 ms', 'ADD p99 ms', 'DEL p50 ms', 'DEL p99 ms'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log([line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
  console.log(JSON.stringify({ benchmark: 'cni', smoke: bench.smoke, runs: RUNS, head, rows }));
});
