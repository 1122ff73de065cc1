/**
 * Time from invoking `ctmgr run -d` (the CLI process, as a user types it) to the new sandbox
 * answering a ping from a sandbox on another host, and to every other host having its
 * neighbour entry — p50/p99 over RUNS runs in a 3-host lab; and the same from the API call (a
 * client already connected, in the manager's namespace), alternating with the CLI runs, so
 * the CLI's share shows. `node -e 0` is measured in the same run. Beside: Docker Swarm
 * measured the same way on this machine, 646 ms median. Goal (from the API): p50 <= 50 ms,
 * p99 <= 150 ms.
 *
 * A ping loop in the source sandbox, started before the run, stamps the first reply; `ip -ts monitor neigh` on the other hosts stamps the entry. Root needed.
 *
 *   npm run bench:converge [-- --smoke]        (RUNS=30)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { labUnavailableReason, startLab, type Lab } from '../test/src/lab/lab.js';
import { ok, waitNodesReady, firstReply } from './support/lab.js';
import { BenchSkipped, runBench } from './support/run.js';
import { pct, fmtMs } from './support/stats.js';

const stamp = (line: string) => {
  const m = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)\]/.exec(line);
  return m ? Date.parse(`${m[1]!.slice(0, 23)}Z`) + Number(`0.${m[1]!.slice(20)}`) * 1000 - Number(`0.${m[1]!.slice(20, 23)}`) * 1000 : NaN;
};

runBench(async (bench) => {
  const why = labUnavailableReason();
  if (why) throw new BenchSkipped(why);
  const RUNS = bench.smoke ? 2 : Number(process.env.RUNS ?? 30);
  const lab: Lab = await startLab({ hosts: 3, agents: true, resyncSeconds: 30 });
  bench.defer(() => lab.destroy());
  const monitors: ChildProcess[] = [];
  bench.defer(() => monitors.forEach((m) => m.kill()));
  await waitNodesReady(lab);
  await ok(lab.ctmgr('network', 'create', '--subnet', '10.10.0.0/16', 'app'));
  // one sandbox per host first, so every host already has the network
  for (const [name, node] of [['src', 'h1'], ['a2', 'h2'], ['a3', 'h3']]) await ok(lab.ctmgr('run', '-d', '--name', name!, '--network', 'app', '--node', node!, '--', 'sleep', 'infinity'));
  for (let i = 0; i < 100 && (await lab.ctagent('h1', 'exec', 'src', '--', 'true')).code !== 0; i++) await new Promise((r) => setTimeout(r, 100));

  // neighbour events on h1 and h2 (the hosts that do not run the new sandbox), with timestamps
  const seen = new Map<string, number[]>();
  for (const host of [lab.hosts[0]!, lab.hosts[1]!]) {
    const mon = spawn('ip', ['-n', host.ns, '-ts', 'monitor', 'neigh'], { stdio: ['ignore', 'pipe', 'ignore'] });
    monitors.push(mon);
    let buf = '';
    mon.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) {
        const ip = / (10\.10\.\d+\.\d+) dev ctvx-\S+ lladdr \S+ PERMANENT/.exec(l)?.[1];
        if (ip && !l.includes('Deleted')) seen.set(ip, [...(seen.get(ip) ?? []), stamp(l)]);
      }
    });
  }
  await new Promise((r) => setTimeout(r, 300));

  const srcNs = / (\S+-s1-\S+) /.exec((await lab.ctagent('h1', 'ps')).stdout)?.[1];
  if (!srcNs) throw new Error('source sandbox not found');

  // A client already connected, in the manager's namespace (the manager listens there).
  const runner = spawn('nsenter', [`--net=/run/netns/${lab.manager.ns}`, '--', process.execPath, '--import', 'tsx', join(import.meta.dirname, 'support', 'api-runner.ts'), `127.0.0.1:4700`, lab.adminDir], {
    stdio: ['pipe', 'pipe', 'inherit'],
    cwd: import.meta.dirname,
  });
  bench.defer(() => void runner.kill());
  const answers = createInterface({ input: runner.stdout! })[Symbol.asyncIterator]();
  const answer = async (): Promise<{ ready?: boolean; t0?: number; ms?: number; error?: string }> => {
    const next = await answers.next();
    if (next.done) throw new Error('the API client ended');
    return JSON.parse(next.value) as { t0?: number; error?: string };
  };
  if (!(await answer()).ready) throw new Error('the API client did not connect');

  const modes = { cli: { pingable: [] as number[], programmed: [] as number[] }, api: { pingable: [] as number[], programmed: [] as number[], call: [] as number[] } };
  for (let i = 0; i < 2 * RUNS; i++) {
    const mode = i % 2 === 0 ? 'cli' : 'api';
    const ip = `10.10.1.${10 + i}`;
    const pinger = firstReply(srcNs, ip);
    await new Promise((r) => setTimeout(r, 300)); // the pinger is sending into the void by now
    let t0 = Date.now();
    if (mode === 'cli') await ok(lab.ctmgr('run', '-d', '--name', `t${i}`, '--network', 'app', '--node', 'h3', '--ip', ip, '--', 'sleep', 'infinity'));
    else {
      runner.stdin!.write(`run t${i} app h3 ${ip}\n`);
      const a = await answer();
      if (a.error || a.t0 === undefined) throw new Error(`API run failed: ${a.error}`);
      t0 = a.t0;
      modes.api.call.push(a.ms!);
    }
    modes[mode].pingable.push((await pinger) - t0);
    for (let w = 0; w < 100 && (seen.get(ip)?.length ?? 0) < 2; w++) await new Promise((r) => setTimeout(r, 20));
    const stamps = seen.get(ip) ?? [];
    if (stamps.length >= 2) modes[mode].programmed.push(Math.max(...stamps) - t0);
  }
  const nodeStart = timeNodeStart(bench.smoke ? 2 : 5);
  const cli = await timeCli(lab, bench.smoke ? 2 : 5);
  const row = (what: string, xs: number[], swarm: string, goal: string) => `| ${what} | ${fmtMs(pct(xs, 0.5))} | ${fmtMs(pct(xs, 0.99))} | ${fmtMs(Math.max(...xs))} | ${swarm} | ${goal} |`;
  console.log(`\nctmgr run -d -> ready across hosts, ${RUNS} runs each way in a 3-host lab, alternating${bench.smoke ? ' (smoke: figures mean nothing)' : ''}`);
  console.log('| measure | p50 ms | p99 ms | max ms | Docker Swarm (same machine) | goal |');
  console.log('|---|---|---|---|---|---|');
  console.log(row('from the CLI: pingable from a sandbox on another host', modes.cli.pingable, '646 median', '-'));
  console.log(row(`from the CLI: neighbour entry on every other host (seen in ${modes.cli.programmed.length} of ${RUNS})`, modes.cli.programmed, '-', '-'));
  console.log(row('from the API call: pingable from a sandbox on another host', modes.api.pingable, '-', 'p50 <= 50, p99 <= 150'));
  console.log(row(`from the API call: neighbour entry on every other host (seen in ${modes.api.programmed.length} of ${RUNS})`, modes.api.programmed, '-', '-'));
  console.log(row('the API call itself (RunContainer answered)', modes.api.call, '-', '-'));
  console.log(`(same run: node -e 0 ${nodeStart.toFixed(0)} ms; the CLI alone, ctmgr node ls, ${cli.toFixed(0)} ms per invocation)`);
  console.log(JSON.stringify({ benchmark: 'overlay-converge', smoke: bench.smoke, runs: RUNS, ...modes, nodeStart, cliMs: cli }));
});

/** p50 of starting Node.js and doing nothing, on this machine in this run. */
function timeNodeStart(times: number): number {
  const t: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    spawnSync(process.execPath, ['-e', '0']);
    t.push(performance.now() - t0);
  }
  return pct(t, 0.5);
}

async function timeCli(lab: Lab, times: number): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    await lab.ctmgr('node', 'ls');
    t.push(performance.now() - t0);
  }
  return pct(t, 0.5);
}

