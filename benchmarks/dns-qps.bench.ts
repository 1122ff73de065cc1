/**
 * Embedded DNS throughput and latency: `dnsperf` from a sandbox against the agent's resolver
 * on the gateway, beside `dnsmasq` serving the same names with the same addresses, reached
 * the same way (it listens on the gateway too, on port 5353), in the same run. 100 queries
 * outstanding. Goal: at least dnsmasq's rate, p99 <= 2 ms.
 *
 * Throughput comes from a plain run; latency percentiles from a second, verbose run (dnsperf
 * 2.10 prints no percentiles; its per-query lines cost CPU, so they are kept out of the rate).
 * Needs root, dnsperf and dnsmasq (deploy/setup.sh installs both).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLab, type Lab } from '../test/src/lab/lab.js';
import { ok } from './support/lab.js';

const SECONDS = Number(process.env.SECONDS_PER_RUN ?? 8);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

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

async function measure(ns: string, server: string, port: number, queries: string): Promise<Result> {
  const base = ['ip', 'netns', 'exec', ns, 'dnsperf', '-s', server, '-p', String(port), '-d', queries, '-q', '100', '-c', '4', '-T', '1'];
  const rate = await run([...base, '-l', String(SECONDS)]);
  const qps = Number(/Queries per second:\s+([\d.]+)/.exec(rate)?.[1] ?? NaN);
  const lost = /Queries lost:\s+(\S+ \([\d.]+%\))/.exec(rate)?.[1] ?? '?';
  const codes = /Response codes:\s+(.*)/.exec(rate)?.[1]?.trim() ?? '?';
  const verbose = await run([...base, '-l', '3', '-v']);
  const lat = [...verbose.matchAll(/^> \S+ .* ([\d.]+)$/gm)].map((m) => Number(m[1]) * 1000);
  return { qps, lost, codes, p50: pct(lat, 0.5), p99: pct(lat, 0.99) };
}

async function main(): Promise<void> {
  const lab: Lab = await startLab({ hosts: 1, agents: true, resyncSeconds: 30 });
  let dnsmasq: ReturnType<typeof spawn> | undefined;
  try {
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

    const dir = mkdtempSync(join(tmpdir(), 'ctnet-dnsbench-'));
    const queries = join(dir, 'queries');
    writeFileSync(queries, ['c1', 'c2', 'c3', 'c1.app', 'web', 'tasks.web'].map((n) => `${n} A`).join('\n') + '\n');
    const hostsFile = join(dir, 'hosts');
    writeFileSync(hostsFile, hosts.map(([ip, n]) => `${ip} ${n}`).join('\n') + '\n');
    const clientNs = / (\S+-s1-\S+) /.exec((await lab.ctagent('h1', 'ps')).stdout.split('\n').find((l) => l.startsWith('client ')) ?? '')?.[1];
    if (!clientNs) throw new Error('client sandbox not found');
    const gateway = '10.80.0.1';
    // Both servers answer every query: check one name on each before measuring.
    for (let i = 0; i < 100 && !(await lab.execIn(clientNs, 'dig', '+short', `@${gateway}`, 'tasks.web')).stdout.trim(); i++) await new Promise((r) => setTimeout(r, 100));
    dnsmasq = spawn('ip', ['netns', 'exec', lab.hosts[0]!.ns, 'dnsmasq', '--no-daemon', '--port', '5353', '--listen-address', gateway, '--bind-interfaces', '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`, '--user=root', '--pid-file='], { stdio: 'ignore' });
    for (let i = 0; i < 50 && !(await lab.execIn(clientNs, 'dig', '+short', '-p', '5353', `@${gateway}`, 'tasks.web')).stdout.trim(); i++) await new Promise((r) => setTimeout(r, 100));

    const ours = await measure(clientNs, gateway, 53, queries);
    const theirs = await measure(clientNs, gateway, 5353, queries);
    console.log(`\nDNS from a sandbox, dnsperf -q 100 -c 4, ${SECONDS} s per rate run, names: containers, <name>.<network>, a dnsrr service, tasks.<service>`);
    console.log('| server | queries/s | lost | p50 ms | p99 ms | response codes | goal |');
    console.log('|---|---|---|---|---|---|---|');
    console.log(`| ctagent embedded DNS | ${ours.qps.toFixed(0)} | ${ours.lost} | ${ours.p50.toFixed(3)} | ${ours.p99.toFixed(3)} | ${ours.codes} | >= dnsmasq, p99 <= 2 ms |`);
    console.log(`| dnsmasq 2.90 (same names) | ${theirs.qps.toFixed(0)} | ${theirs.lost} | ${theirs.p50.toFixed(3)} | ${theirs.p99.toFixed(3)} | ${theirs.codes} | - |`);
    console.log(`ours / dnsmasq: ${((ours.qps / theirs.qps) * 100).toFixed(0)}%`);
    console.log(JSON.stringify({ benchmark: 'dns-qps', ours, dnsmasq: theirs }));
  } finally {
    dnsmasq?.kill();
    await lab.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
