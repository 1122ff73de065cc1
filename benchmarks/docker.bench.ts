/**
 * ctnet as Docker's network plugin: `docker run -d --network N` on h1 -> the new container
 * resolvable by name and answering a ping from a container on h2, p50/p99 over RUNS runs,
 * dockerd's own container start included (real dockerd 20.10 on each lab host). Beside it,
 * measured in the same run: the same on ONE host with Docker's own bridge driver (a user
 * network: its embedded DNS, no cluster), which is the floor dockerd itself sets. The issue's
 * figure for Docker Swarm (overlay, attachable network, same machine): 646 ms median.
 * Root needed.
 *
 *   npm run bench:docker [-- --smoke]        (RUNS=30)
 */
import { spawn } from 'node:child_process';
import { labUnavailableReason, startLab, type Lab } from '../test/src/lab/lab.js';
import { LAB_DOCKER_IMAGE, dockerdUnavailableReason, startDockerd, type LabDockerd } from '../test/src/lab/dockerd.js';
import { ok, waitNodesReady } from './support/lab.js';
import { BenchSkipped, runBench } from './support/run.js';
import { fmtMs, pct } from './support/stats.js';

const SWARM_MEDIAN_MS = 646;

/**
 * In a container's network namespace, asks the container's resolver (Docker's, at 127.0.0.11)
 * for NAME and pings the answer, until the first reply; resolves with when that came. The
 * host's dig and ping (a 50 ms reply wait: busybox's ping waits whole seconds).
 */
function firstReplyByName(containerPid: number, name: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const loop =
      'while :; do ip=$(dig +short +time=1 +tries=1 @127.0.0.11 "$1" A | head -n1); ' +
      '[ -n "$ip" ] && ping -c1 -W0.05 -n "$ip" >/dev/null 2>&1 && break; sleep 0.005; done';
    const p = spawn('timeout', ['20', 'nsenter', `--target=${containerPid}`, '--net', '--', 'sh', '-c', loop, 'sh', name], { stdio: 'ignore' });
    p.on('exit', (code) => (code === 0 ? resolve(Date.now()) : reject(new Error(`${name} never answered by name (exit ${code})`))));
  });
}

runBench(async (bench) => {
  const why = labUnavailableReason() ?? dockerdUnavailableReason();
  if (why) throw new BenchSkipped(why);
  const RUNS = bench.smoke ? 2 : Number(process.env.RUNS ?? 30);
  const lab: Lab = await startLab({ hosts: 2, agents: true, resyncSeconds: 30, docker: true });
  bench.defer(() => lab.destroy());
  await waitNodesReady(lab);
  const engines: LabDockerd[] = [];
  bench.defer(async () => {
    for (const e of engines) await e.destroy();
  });
  for (const host of ['h1', 'h2']) engines.push(await startDockerd(lab, host));
  const [d1, d2] = engines as [LabDockerd, LabDockerd];
  await ok(lab.ctmgr('network', 'create', '--subnet', '10.60.0.0/16', 'bench'));
  // The network reaches each Docker through its agent.
  for (const d of engines) {
    for (let i = 0; i < 200 && !(await d.docker('network', 'ls', '--format', '{{.Name}}')).stdout.includes('bench'); i++) await new Promise((r) => setTimeout(r, 50));
  }
  await ok(d1.docker('network', 'create', 'localbr')); // Docker's own bridge driver, h1 only
  const pidOf = async (d: LabDockerd, name: string) => Number((await ok(d.docker('inspect', '-f', '{{.State.Pid}}', name))).trim());
  await ok(d2.docker('run', '-d', '--name', 'probe', '--network', 'bench', LAB_DOCKER_IMAGE, 'sleep', '3600'));
  // One resident container on h1 as on any busy host (the CNI benchmark does the same): the
  // network's bridge and VXLAN device exist there before the measured runs.
  await ok(d1.docker('run', '-d', '--name', 'resident', '--network', 'bench', LAB_DOCKER_IMAGE, 'sleep', '3600'));
  await ok(d1.docker('run', '-d', '--name', 'localprobe', '--network', 'localbr', LAB_DOCKER_IMAGE, 'sleep', '3600'));
  const probe = await pidOf(d2, 'probe');
  const localProbe = await pidOf(d1, 'localprobe');

  /** [docker run returned, first reply by name] in ms after the run started. */
  const measure = async (network: string, watcher: number, name: string): Promise<[number, number]> => {
    const reply = firstReplyByName(watcher, name);
    await new Promise((r) => setTimeout(r, 100)); // the watcher is looking before the run starts
    const t0 = Date.now();
    await ok(d1.docker('run', '-d', '--name', name, '--network', network, LAB_DOCKER_IMAGE, 'sleep', '3600'));
    const returned = Date.now() - t0;
    return [returned, (await reply) - t0];
  };
  const ctnet: [number, number][] = [];
  const local: [number, number][] = [];
  for (let r = 0; r < RUNS; r++) {
    ctnet.push(await measure('bench', probe, `c${r}`));
    local.push(await measure('localbr', localProbe, `l${r}`));
    await ok(d1.docker('rm', '-f', `c${r}`, `l${r}`));
  }
  const cols = (xs: [number, number][]) => [fmtMs(pct(xs.map((x) => x[1]), 0.5)), fmtMs(pct(xs.map((x) => x[1]), 0.99)), fmtMs(pct(xs.map((x) => x[0]), 0.5))];
  const rows = [
    ['ctnet plugin: docker run on h1 -> pingable by name from a container on h2', ...cols(ctnet)],
    ['Docker bridge driver, one host (same run): docker run -> pingable by name on h1', ...cols(local)],
    [`Docker Swarm, overlay + attachable network (the issue's figure, same machine)`, String(SWARM_MEDIAN_MS), '-', '-'],
    ['goal (ctnet)', '150', '-', '-'],
  ];
  console.log(`\nDocker: docker run -d -> resolvable and pingable by name, ${RUNS} runs each, dockerd's start included${bench.smoke ? ' (smoke: figures mean nothing)' : ''}`);
  const head = ['measure', 'p50 ms', 'p99 ms', 'docker run returns p50 ms'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log([line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n'));
  console.log(JSON.stringify({ benchmark: 'docker', smoke: bench.smoke, runs: RUNS, head, rows }));
});
