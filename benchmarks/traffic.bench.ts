/**
 * Traffic policy overhead and speed, in a 3-host lab (all kernel: veth, bridges, VXLAN, nftables):
 * (a) TCP connections per second and latency (connect, read the server's first line, close;
 *     8 at a time, SECONDS each) from a sandbox on h2 — directly to a task address (the peer:
 *     no ctnet rule on the path), through the service VIP (nftables DNAT in the client's
 *     sandbox), and from the underlay through the routing mesh (DNAT + SNAT on a node without
 *     a task, then over the overlay) — in the same run, with the ratio to direct;
 * (b) `service scale big=100` from 10: time until every task runs, and until the VIP map in a
 *     client sandbox on every host holds all 100 (the rules following the scale).
 * Root needed.
 *
 *   npm run bench:traffic [-- --smoke]        (SECONDS_PER_PATH=4; smoke: 1 s, 1 round, scale 2 -> 6)
 */
import { join } from 'node:path';
import { labUnavailableReason, REPO, startLab, type Lab } from '../test/src/lab/lab.js';
import { BenchSkipped, runBench } from './support/run.js';

const WHOAMI = join(REPO, 'test/src/lab/fixtures/tcp-whoami.mjs');
const PROBE = join(REPO, 'test/src/lab/fixtures/tcp-probe.mjs');
const NODE = process.execPath;

interface Load {
  connections: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
}

runBench(async (bench) => {
  const why = labUnavailableReason();
  if (why) throw new BenchSkipped(why);
  const SECONDS = bench.smoke ? 1 : Number(process.env.SECONDS_PER_PATH ?? 4);
  const ROUNDS = bench.smoke ? 1 : 2;
  const [FROM, TO] = bench.smoke ? [2, 6] : [10, 100];
  const lab: Lab = await startLab({ hosts: 3, agents: true, resyncSeconds: 30 });
  bench.defer(() => lab.destroy());
  const ok = async (p: Promise<{ code: number; stdout: string; stderr: string }>) => {
    const r = await p;
    if (r.code !== 0) throw new Error(r.stderr || r.stdout);
    return r.stdout;
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < 200 && ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length < 3; i++) await sleep(100);
  await ok(lab.ctmgr('network', 'create', '--subnet', '10.90.0.0/16', 'app'));
  for (const h of ['h1', 'h2', 'h3']) await ok(lab.ctmgr('run', '-d', '--name', `c${h}`, '--network', 'app', '--node', h, '--', 'sleep', 'infinity'));
  // three tasks on h1 and h2 (none on h3, the mesh's entry); the client is on h2
  const created = performance.now();
  await ok(lab.ctmgr('service', 'create', '--name', 'web', '--network', 'app', '--replicas', '3', '--constraint', 'node.name!=h3',
    '--publish', 'published=30080,target=8080', '--', NODE, WHOAMI, '8080'));
  const web = JSON.parse(await ok(lab.ctmgr('service', 'inspect', 'web'))) as { vips: { ip: string }[]; tasks: { node: string; ips: string[] }[] };
  const vip = web.vips[0]!.ip;
  const remote = web.tasks.find((t) => t.node === 'h1')!.ips[0]!;
  const h3 = lab.hosts[2]!.addr;
  // Each measurement from a fresh client sandbox on h2: thousands of closed connections leave
  // TIME_WAIT behind, and a client that ran out of ephemeral ports would make the next path
  // look slow.
  let clientSeq = 0;
  const load = async (where: 'sandbox' | 'underlay', addr: string, port: number): Promise<Load> => {
    const cmd = [NODE, PROBE, 'load', addr, String(port), String(SECONDS), '8'];
    if (where === 'underlay') return JSON.parse(await ok(lab.exec('m', ...cmd))) as Load;
    const name = `load${++clientSeq}`;
    await ok(lab.ctmgr('run', '-d', '--name', name, '--network', 'app', '--node', 'h2', '--', 'sleep', 'infinity'));
    for (let i = 0; i < 100 && (await lab.ctagent('h2', 'exec', name, '--', 'true')).code !== 0; i++) await sleep(100);
    const out = JSON.parse(await ok(lab.ctagent('h2', 'exec', name, '--', ...cmd))) as Load;
    await ok(lab.ctmgr('rm', '-f', name));
    return out;
  };
  // until every path answers; how long that took is printed (it includes the tasks' start)
  const answeredAfter: Record<string, number> = {};
  for (const [w, a, p, what] of [['sandbox', remote, 8080, 'direct'], ['sandbox', vip, 8080, 'VIP'], ['underlay', h3, 30080, 'mesh']] as const) {
    for (let i = 0; ; i++) {
      const r = JSON.parse(await ok(w === 'sandbox' ? lab.ctagent('h2', 'exec', 'ch2', '--', NODE, PROBE, 'once', a, String(p), '1', '500') : lab.exec('m', NODE, PROBE, 'once', a, String(p), '1', '500'))) as { answers: string[] };
      if (r.answers.length) break;
      if (i >= 100) throw new Error(`the ${what} path (${a}:${p}) never answered`);
      await sleep(200);
    }
    answeredAfter[what] = performance.now() - created;
  }
  const rounds: { direct: Load; viaVip: Load; viaMesh: Load }[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r > 0) await sleep(1000);
    rounds.push({ direct: await load('sandbox', remote, 8080), viaVip: await load('sandbox', vip, 8080), viaMesh: await load('underlay', h3, 30080) });
  }

  // (b) rules following a scale FROM -> TO (10 -> 100)
  await ok(lab.ctmgr('service', 'create', '--name', 'big', '--network', 'app', '--replicas', String(FROM), '--', 'sleep', 'infinity'));
  const bigVip = (JSON.parse(await ok(lab.ctmgr('service', 'inspect', 'big'))) as { vips: { ip: string }[] }).vips[0]!.ip;
  const nsOf = async (host: string, name: string) => / (\S+-s\d-\S+) /.exec((await lab.ctagent(host, 'ps')).stdout.split('\n').find((l) => l.startsWith(`${name} `)) ?? '')?.[1] ?? '';
  const clients = await Promise.all(['h1', 'h2', 'h3'].map((h) => nsOf(h, `c${h}`)));
  const backends = async (ns: string): Promise<number> => {
    const rule = (await lab.execIn(ns, 'nft', 'list', 'chain', 'ip', 'ctnet', 'nat_out')).stdout.split('\n').find((l) => l.includes(`ip daddr ${bigVip} `)) ?? '';
    return rule.includes('numgen') ? Number(/mod (\d+)/.exec(rule)![1]) : rule.includes('dnat to') ? 1 : 0;
  };
  const t0 = performance.now();
  await ok(lab.ctmgr('service', 'scale', '-d', `big=${TO}`));
  let tasksAt = 0;
  let rulesAt = 0;
  const perHost = [0, 0, 0];
  while (performance.now() - t0 < (bench.smoke ? 30_000 : 120_000) && (!tasksAt || !rulesAt)) {
    if (!tasksAt) {
      const v = JSON.parse(await ok(lab.ctmgr('service', 'inspect', 'big'))) as { running: number };
      if (v.running >= TO) tasksAt = performance.now() - t0;
    }
    const counts = await Promise.all(clients.map(backends));
    counts.forEach((c, i) => {
      if (c >= TO && !perHost[i]) perHost[i] = performance.now() - t0;
    });
    if (perHost.every(Boolean)) rulesAt = Math.max(...perHost);
    await sleep(50);
  }

  const row = (name: string, l: Load, base: Load) =>
    `| ${name} | ${(l.connections / l.seconds).toFixed(0)} | ${l.p50.toFixed(2)} | ${l.p99.toFixed(2)} | ${l.errors} | ${((l.connections / base.connections) * 100).toFixed(0)}% |`;
  console.log(`\nTCP connections (connect + first line + close, 8 concurrent, ${SECONDS} s each), client sandbox on h2, tasks on h1/h2${bench.smoke ? ' (smoke: figures mean nothing)' : ''}`);
  console.log('| path | conn/s | p50 ms | p99 ms | errors | vs direct |');
  console.log('|---|---|---|---|---|---|');
  for (const [i, { direct, viaVip, viaMesh }] of rounds.entries()) {
    console.log(row(`round ${i + 1}: direct to a task on h1 (peer: no ctnet rule)`, direct, direct));
    console.log(row(`round ${i + 1}: service VIP (DNAT in the client sandbox)`, viaVip, direct));
    console.log(row(`round ${i + 1}: routing mesh via h3 (no task there), from the underlay`, viaMesh, direct));
  }
  console.log(`first answer after \`service create\`: ${Object.entries(answeredAfter).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(', ')}`);
  console.log(`\nRules following \`service scale big=${TO}\` (from ${FROM} sleeping tasks), measured from the CLI call`);
  console.log('| measure | ms |');
  console.log('|---|---|');
  console.log(`| all ${TO} tasks running (manager) | ${tasksAt ? tasksAt.toFixed(0) : 'not reached'} |`);
  console.log(`| VIP map holds ${TO} in a sandbox on h1 / h2 / h3 | ${perHost.map((t) => (t ? t.toFixed(0) : '-')).join(' / ')} |`);
  console.log(`| rules complete on every host after the last task ran | ${tasksAt && rulesAt ? (rulesAt - tasksAt).toFixed(0) : '-'} |`);
  console.log(JSON.stringify({ benchmark: 'traffic', smoke: bench.smoke, seconds: SECONDS, answeredAfter, rounds, scale: { tasksAt, rulesAt, perHost } }));
});
