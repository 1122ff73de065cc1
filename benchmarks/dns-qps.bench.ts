/**
 * Embedded DNS throughput and latency: `dnsperf` from a sandbox against the agent's resolver
 * on the gateway, beside `dnsmasq` serving the same names with the same addresses from a
 * container on the same network and host (one bridge hop from the client, as the gateway is),
 * in the same run. 100 queries outstanding. Goal: at least dnsmasq's rate, p99 <= 2 ms.
 *
 * dnsmasq runs in a container because the host answers its sandboxes on port 53 only (ctnet's
 * `sandbox_in` chain drops the rest), and port 53 on the gateway is ctnet's own resolver.
 *
 * Throughput comes from a plain run; latency percentiles from a second, verbose run (dnsperf
 * 2.10 prints no percentiles; its per-query lines cost CPU, so they are kept out of the rate).
 * Needs root, dnsperf and dnsmasq (deploy/setup.sh installs both).
 *
 *   npm run bench:dns [-- --smoke]        (SECONDS_PER_RUN=8)
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labUnavailableReason, startLab, type Lab } from '../test/src/lab/lab.js';
import { ok } from './support/lab.js';
import { BenchSkipped, runBench } from './support/run.js';
import { pct } from './support/stats.js';

const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '-');

interface Result {
  qps: number;
  lost: string;
  p50: number;
  p99: number;
  codes: string;
}

async function run(cmd: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd.join(' ')}: exit ${code}\n${out.slice(-2000)}`))));
  });
}

async function measure(ns: string, server: string, port: number, queries: string, seconds: number): Promise<Result> {
  const base = ['ip', 'netns', 'exec', ns, 'dnsperf', '-s', server, '-p', String(port), '-d', queries, '-q', '100', '-c', '4', '-T', '1'];
  const rate = await run([...base, '-l', String(seconds)]);
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(rate)?.[1] ?? NaN);
  const lost = /Queries lost:\s+(\S+ \([\d.]+%\))/.exec(rate)?.[1] ?? '?';
  const codes = /Response codes:\s+(.*)/.exec(rate)?.[1]?.trim() ?? '?';
  const verbose = await run([...base, '-l', String(Math.min(3, seconds)), '-v']);
  const lat = [...verbose.matchAll(/^> \S+ .* ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000);
  return { qps, lost, codes, p50: pct(lat, 0.5), p99: pct(lat, 0.99) };
}

/** Polls until `dig` from NS at SERVER gets an answer for NAME; throws naming the server otherwise. */
async function waitAnswers(lab: Lab, ns: string, server: string, name: string, what: string): Promise<void> {
  for (let i = 0; !(await lab.execIn(ns, 'dig', '+short', '+time=1', '+tries=1', `@${server}`, name)).stdout.trim(); i++) {
    if (i >= 100) throw new Error(`${what} at ${server} never answered ${name} from the client sandbox`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

runBench(async (bench) => {
  const why = labUnavailableReason();
  if (why) throw new BenchSkipped(why);
  const SECONDS = bench.smoke ? 1 : Number(process.env.SECONDS_PER_RUN ?? 8);
  const dnsmasqVersion = /version (\S+)/.exec(execFileSync('dnsmasq', ['--version']).toString())?.[1] ?? '?';
  const lab: Lab = await startLab({ hosts: 1, agents: true, resyncSeconds: 30 });
  bench.defer(() => lab.destroy());
  const dir = mkdtempSync(join(tmpdir(), 'ctnet-dnsbench-'));
  bench.defer(() => rmSync(dir, { recursive: true, force: true }));

  for (let i = 0; i < 200 && !/ready/.test((await lab.ctmgr('node', 'ls')).stdout); i++) await new Promise((r) => setTimeout(r, 100));
  await ok(lab.ctmgr('network', 'create', '--subnet', '10.80.0.0/24', 'app'));
  for (const n of ['client', 'c1', 'c2', 'c3']) await ok(lab.ctmgr('run', '-d', '--name', n, '--network', 'app', '--', 'sleep', 'infinity'));
  await ok(lab.ctmgr('service', 'create', '--name', 'web', '--network', 'app', '--replicas', '2', '--endpoint-mode', 'dnsrr', '--', 'sleep', 'infinity'));
  const ipOf = async (n: string) => (JSON.parse(await ok(lab.ctmgr('inspect', n))) as { endpoints: { ip: string }[] }[])[0]!.endpoints[0]!.ip;
  const svc = JSON.parse(await ok(lab.ctmgr('service', 'inspect', 'web'))) as { tasks: { ips: string[] }[] };
  const taskIps = svc.tasks.flatMap((t) => t.ips);
  const hosts: [string, string][] = [];
  for (const n of ['c1', 'c2', 'c3']) hosts.push([await ipOf(n), n], [await ipOf(n), `${n}.app`]);
  for (const ip of taskIps) hosts.push([ip, 'web'], [ip, 'tasks.web']);

  const queries = join(dir, 'queries');
  writeFileSync(queries, ['c1', 'c2', 'c3', 'c1.app', 'web', 'tasks.web'].map((n) => `${n} A`).join('\n') + '\n');
  const hostsFile = join(dir, 'hosts');
  writeFileSync(hostsFile, hosts.map(([ip, n]) => `${ip} ${n}`).join('\n') + '\n');
  const clientNs = / (\S+-s1-\S+) /.exec((await lab.ctagent('h1', 'ps')).stdout.split('\n').find((l) => l.startsWith('client ')) ?? '')?.[1];
  if (!clientNs) throw new Error('client sandbox not found');
  const gateway = '10.80.0.1';
  // The peer: dnsmasq as a container beside the client (the lab removes it with everything else).
  await ok(lab.ctmgr('run', '-d', '--name', 'dnsmasq', '--network', 'app', '--node', 'h1', '--',
    'dnsmasq', '--keep-in-foreground', '--port', '53', '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`, '--user=root', '--pid-file='));
  const peer = await ipOf('dnsmasq');
  // Both servers answer every query: check one name on each before measuring.
  await waitAnswers(lab, clientNs, gateway, 'tasks.web', 'ctagent\'s resolver');
  await waitAnswers(lab, clientNs, peer, 'tasks.web', 'dnsmasq');

  const ours = await measure(clientNs, gateway, 53, queries, SECONDS);
  const theirs = await measure(clientNs, peer, 53, queries, SECONDS);
  console.log(`\nDNS from a sandbox, dnsperf -q 100 -c 4, ${SECONDS} s per rate run, names: containers, <name>.<network>, a dnsrr service, tasks.<service>${bench.smoke ? ' (smoke: figures mean nothing)' : ''}`);
  console.log('| server | queries/s | lost | p50 ms | p99 ms | response codes | goal |');
  console.log('|---|---|---|---|---|---|---|');
  console.log(`| ctagent embedded DNS (gateway ${gateway}) | ${ours.qps.toFixed(0)} | ${ours.lost} | ${ms(ours.p50)} | ${ms(ours.p99)} | ${ours.codes} | >= dnsmasq, p99 <= 2 ms |`);
  console.log(`| dnsmasq ${dnsmasqVersion} (same names, container ${peer}) | ${theirs.qps.toFixed(0)} | ${theirs.lost} | ${ms(theirs.p50)} | ${ms(theirs.p99)} | ${theirs.codes} | - |`);
  console.log(`ours / dnsmasq: ${((ours.qps / theirs.qps) * 100).toFixed(0)}%`);
  console.log(JSON.stringify({ benchmark: 'dns-qps', smoke: bench.smoke, ours, dnsmasq: theirs }));
});
