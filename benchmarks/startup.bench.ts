/**
 * Start-up of the shipped executables, beside their floor measured in the same run:
 *   - `node -e 0` (Node.js itself), `ctmgr --version` and `ctagent --help` run from the
 *     bundles (packages/cli/dist/bin/ctmgr, packages/agent/dist/bin/ctagent), and the same
 *     two commands from the unbundled build (dist/main.js over node_modules) as before;
 *   - a `ctmgr node ls` round trip (start, mutual TLS, one call, print, exit) against a real
 *     `ctmgr serve` on its embedded etcd on loopback, bundled and unbundled.
 * The commands run interleaved, round after round, so a busy moment of the machine falls on
 * all of them alike. Goals (issue 16): --version within 1.5x of `node -e 0`, node ls p50 <= 100 ms.
 *
 *   npm run bench:startup [-- --smoke]        (RUNS=30)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '@ctnet/store';
import { runBench } from './support/run.js';
import { fmtMs, pct } from './support/stats.js';

const REPO = resolve(import.meta.dirname, '..');
const CTMGR = join(REPO, 'packages/cli/dist/bin/ctmgr');
const CTAGENT = join(REPO, 'packages/agent/dist/bin/ctagent');
const CTMGR_JS = join(REPO, 'packages/cli/dist/main.js');
const CTAGENT_JS = join(REPO, 'packages/agent/dist/main.js');

/** Runs a command to its end; resolves with its wall time in ms (fails on a non-zero exit). */
function timed(args: readonly string[]): Promise<number> {
  const t0 = performance.now();
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    p.once('error', rej);
    p.once('exit', (code) => (code === 0 ? res(performance.now() - t0) : rej(new Error(`${args.join(' ')}: exit ${code}: ${err.trim()}`))));
  });
}

runBench(async (bench) => {
  const RUNS = bench.smoke ? 3 : Number(process.env.RUNS ?? 30);
  const dir = await mkdtemp(join(tmpdir(), 'ctnet-bench-startup-'));
  bench.defer(() => rm(dir, { recursive: true, force: true }));

  // A manager on its own embedded etcd, on loopback only.
  const [grpc, http, etcd] = [await freePort(), await freePort(), await freePort()];
  const mgr = spawn(process.execPath, [CTMGR, 'serve', `--listen=127.0.0.1:${grpc}`, `--http=127.0.0.1:${http}`, `--embedded-etcd-port=${etcd}`, `--data-dir=${dir}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let mgrErr = '';
  mgr.stderr!.on('data', (c: Buffer) => (mgrErr = (mgrErr + c.toString()).slice(-2000)));
  bench.defer(
    () =>
      new Promise<void>((res) => {
        if (mgr.exitCode !== null) return res();
        mgr.once('exit', () => res());
        mgr.kill('SIGTERM');
      }),
  );
  for (let i = 0; ; i++) {
    if (await fetch(`http://127.0.0.1:${http}/healthz`).then((r) => r.ok, () => false)) break;
    if (i > 400 || mgr.exitCode !== null) throw new Error(`ctmgr serve did not become healthy${mgr.exitCode !== null ? ` (exit ${mgr.exitCode})` : ''}: ${mgrErr.trim()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const ls = ['--manager', `127.0.0.1:${grpc}`, '--tls-dir', join(dir, 'admin'), 'node', 'ls'];

  const cases = [
    { name: 'node -e 0 (floor)', args: ['-e', '0'] },
    { name: 'ctmgr --version (bundle)', args: [CTMGR, '--version'] },
    { name: 'ctagent --help (bundle)', args: [CTAGENT, '--help'] },
    { name: 'ctmgr --version (unbundled, before)', args: [CTMGR_JS, '--version'] },
    { name: 'ctagent --help (unbundled, before)', args: [CTAGENT_JS, '--help'] },
    { name: 'ctmgr node ls round trip (bundle)', args: [CTMGR, ...ls] },
    { name: 'ctmgr node ls round trip (unbundled, before)', args: [CTMGR_JS, ...ls] },
  ];
  const times = new Map(cases.map((c) => [c.name, [] as number[]]));
  for (const c of cases) await timed(c.args); // warm the page cache
  for (let round = 0; round < RUNS; round++) {
    for (const c of cases) times.get(c.name)!.push(await timed(c.args));
  }

  const floor = pct(times.get(cases[0]!.name)!, 0.5);
  const goal = (name: string, p50: number): string => {
    if (name.startsWith('ctmgr --version (bundle)')) return `<= 1.5x node: ${p50 / floor <= 1.5 ? 'met' : 'not met'}`;
    if (name.startsWith('ctmgr node ls round trip (bundle)')) return `p50 <= 100 ms: ${p50 <= 100 ? 'met' : 'not met'}`;
    return '';
  };
  console.log(`\nStart-up of the executables, ${RUNS} interleaved rounds, Node.js ${process.version}${bench.smoke ? ' (smoke: figures mean nothing)' : ''}`);
  console.log('| command | p50 ms | p99 ms | x node -e 0 (same run) | goal |');
  console.log('|---|---|---|---|---|');
  for (const c of cases) {
    const xs = times.get(c.name)!;
    const p50 = pct(xs, 0.5);
    console.log(`| ${c.name} | ${fmtMs(p50)} | ${fmtMs(pct(xs, 0.99))} | ${(p50 / floor).toFixed(2)} | ${goal(c.name, p50)} |`);
  }
});
