/**
 * Join time of a new agent: from starting `ctagent run --join-token TOKEN` on a host with no
 * credential to (a) holding its node certificate (CA checked against the token, key made,
 * CSR signed) and (b) ready (registered, lease taken, first snapshot received) — p50/p99 over
 * RUNS joins in a 2-host lab. Between runs the node is removed (`ctmgr node rm -f`, which
 * revokes its certificate) and its credential deleted, so every run is a first join.
 * Beside it, the floor measured in the same run: starting Node.js and loading the agent
 * (`ctagent --help`), which every join pays before it can do anything.
 *
 * Times come from the agent's own log stamps (same clock as this process).
 *
 *   npm run bench:join [-- --smoke]        (RUNS=20)
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { labUnavailableReason, startLab, type Lab } from '../test/src/lab/lab.js';
import { ok } from './support/lab.js';
import { BenchSkipped, runBench } from './support/run.js';
import { pct, fmtMs } from './support/stats.js';

const AGENT_JS = join(import.meta.dirname, '..', 'packages', 'agent', 'dist', 'bin', 'ctagent');

/** The stamp of the first log line after `from` (a byte offset) that matches `re`. */
function stampOf(log: string, from: number, re: RegExp): number {
  for (const line of log.slice(from).split('\n')) {
    if (re.test(line)) return Date.parse(/^(\S+Z) /.exec(line)?.[1] ?? '');
  }
  return NaN;
}

async function floorMs(times: number): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const p = spawn(process.execPath, [AGENT_JS, '--help'], { stdio: 'ignore' });
      p.once('error', reject);
      p.once('exit', () => resolve());
    });
    xs.push(performance.now() - t0);
  }
  return pct(xs, 0.5);
}

runBench(async (bench) => {
  const why = labUnavailableReason();
  if (why) throw new BenchSkipped(why);
  const RUNS = bench.smoke ? 2 : Number(process.env.RUNS ?? 20);
  const lab: Lab = await startLab({ hosts: 2, agents: false, resyncSeconds: 30 });
  bench.defer(() => lab.destroy());
  const host = lab.hosts[0]!;
  const logPath = join(lab.workDir, `${host.name}.log`);
  const log = () => {
    try {
      return readFileSync(logPath, 'utf8');
    } catch {
      return '';
    }
  };
  const joined: number[] = [];
  const ready: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    rmSync(join(lab.workDir, host.name, 'tls'), { recursive: true, force: true });
    const from = log().length;
    const t0 = Date.now();
    lab.startAgent(host.name);
    for (let w = 0; w < 400 && Number.isNaN(stampOf(log(), from, /snapshot received/)); w++) await new Promise((r) => setTimeout(r, 25));
    const [j, r] = [stampOf(log(), from, /joined the cluster/), stampOf(log(), from, /snapshot received/)];
    if (Number.isNaN(r)) throw new Error(`the agent did not become ready within 10 s:\n${log().slice(from).split('\n').slice(-10).join('\n')}`);
    joined.push(j - t0);
    ready.push(r - t0);
    await lab.stopAgent(host.name);
    await ok(lab.ctmgr('node', 'rm', '--force', host.name));
  }
  const floor = await floorMs(bench.smoke ? 2 : 5);
  console.log(`\nctagent run --join-token -> certificate -> ready, ${RUNS} first joins in a 2-host lab${bench.smoke ? ' (smoke: figures mean nothing)' : ''}`);
  console.log('| measure | p50 ms | p99 ms | max ms | floor: Node.js + agent load (same run) |');
  console.log('|---|---|---|---|---|');
  console.log(`| holds its node certificate | ${fmtMs(pct(joined, 0.5))} | ${fmtMs(pct(joined, 0.99))} | ${fmtMs(Math.max(...joined))} | ${fmtMs(floor)} |`);
  console.log(`| ready (registered, first snapshot) | ${fmtMs(pct(ready, 0.5))} | ${fmtMs(pct(ready, 0.99))} | ${fmtMs(Math.max(...ready))} | ${fmtMs(floor)} |`);
  console.log(JSON.stringify({ benchmark: 'join', smoke: bench.smoke, runs: RUNS, joined, ready, floor }));
});
