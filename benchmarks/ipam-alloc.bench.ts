/**
 * IPAM allocation rate: endpoint create (address claim + endpoint record in one etcd
 * transaction), sequential and with 16 concurrent clients, beside the raw etcd put-if-absent
 * rate on the same etcd in the same run (the limit). Goal: >= 75% of raw.
 *
 * Two ctnet rows: the manager's createEndpoint handler called in-process on a manager started
 * in this process (view, allocator, transaction, watch fan-out to a connected agent: all the
 * manager's work per allocation), and end-to-end over gRPC from a client to a ctmgr process
 * (adds the RPC hop and a third process competing for this machine's 2 cores).
 *
 *   npm run bench:ipam -- [--tmpfs] [--n 5000] [--smoke]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Etcd3 } from 'etcd3';
import { Server, ServerCredentials, type ServiceError } from '@grpc/grpc-js';
import { CreateEndpointRequest as CreateReq, CreateNetworkRequest, ManagerServiceService, serverOptions, type CreateEndpointRequest, type ManagerServiceClient } from '@ctnet/proto';
import { createLogger, createManagerService, handlers, startManager } from '@ctnet/manager';
import { parseManagerConfig } from '@ctnet/core';
import { freePort, startTestEtcd } from '@ctnet/store';
import { runBench, type Bench } from './support/run.js';
import { adminClient, joinNode } from './support/tls.js';
import { adminCredential } from '../test/src/harness.js';
import type { Credential } from '@ctnet/pki';

const CONCURRENCY = 16;
const REPO = resolve(import.meta.dirname, '..');

async function timed(n: number, workers: number, op: (i: number) => Promise<void>): Promise<{ rate: number; p50: number; p99: number }> {
  let next = 0;
  const lat: number[] = [];
  const start = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        const t = performance.now();
        await op(i);
        lat.push(performance.now() - t);
      }
    }),
  );
  const secs = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return { rate: n / secs, p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.floor(lat.length * 0.99)]! };
}

const ROUNDS = 5;

/**
 * Disk fsync latency on a shared VM drifts by 2x within a minute, so the limit and ctnet run
 * interleaved in short rounds (alternating who goes first) and each total is ops / time.
 */
async function interleaved(n: number, workers: number, a: (i: number) => Promise<void>, b: (i: number) => Promise<void>) {
  const per = Math.ceil(n / ROUNDS);
  const acc = { a: { ops: 0, secs: 0 }, b: { ops: 0, secs: 0 } };
  for (let r = 0; r < ROUNDS; r++) {
    const order: ('a' | 'b')[] = r % 2 === 0 ? ['a', 'b'] : ['b', 'a'];
    for (const which of order) {
      const op = which === 'a' ? a : b;
      const base = r * per;
      const res = await timed(per, workers, (i) => op(base + i));
      acc[which].ops += per;
      acc[which].secs += per / res.rate;
    }
  }
  const rate = (x: { ops: number; secs: number }): Stats => ({ rate: x.ops / x.secs, p50: NaN, p99: NaN });
  return { a: rate(acc.a), b: rate(acc.b) };
}
type Stats = { rate: number; p50: number; p99: number };

type Call = <Res>(fn: (cb: (e: ServiceError | null, r: Res) => void) => void) => Promise<Res>;
const call: Call = (fn) => new Promise((res, rej) => fn((e, r) => (e ? rej(e) : res(r))));
// fromPartial fills every field the message has, so a field added later (as `node` was) goes out
// empty instead of as the string "undefined".
const netReq = (name: string, subnet: string) => CreateNetworkRequest.fromPartial({ name, driver: 'overlay', subnet });

/** SIGTERM, then SIGKILL after 5 s; resolves once the child is gone. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await gone;
  clearTimeout(timer);
}

let benchCred: Credential | undefined;

/** Registers node "bench" through a real agent stream, from a separate process (kept running: the fan-out is part of the cost). */
async function connectBenchAgent(bench: Bench, addr: string, client: ManagerServiceClient, dataDir: string): Promise<() => Promise<void>> {
  // Joined once: both managers share the etcd, so the certificate serves both.
  const cred = (benchCred ??= await joinNode(addr, dataDir, 'bench'));
  const sink = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'benchmarks/support/agent-sink.ts'), addr, 'bench'], { stdio: ['pipe', 'ignore', 'ignore'] });
  sink.stdin!.end(JSON.stringify(cred));
  const stop = once(() => stopChild(sink));
  bench.defer(stop);
  for (let i = 0; !(await call<{ nodes: unknown[] }>((cb) => client.listNodes({}, cb))).nodes.length; i++) {
    if (i > 400 || sink.exitCode !== null) throw new Error(`the stand-in agent did not register node "bench" (${sink.exitCode === null ? 'in 10 s' : `exit ${sink.exitCode}`})`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return stop;
}

/** fn, run at most once: an undo step that may also run early, in order. */
function once(fn: () => Promise<void> | void): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= Promise.resolve().then(fn));
}

runBench(async (bench) => {
  const tmpfs = bench.args.includes('--tmpfs') || bench.smoke;
  const N = Number(bench.arg('n') ?? (bench.smoke ? 100 : 5000));
  const SEQ_N = Math.min(1000, N);
  const WARM = bench.smoke ? 20 : 200;
  const LAT_N = bench.smoke ? 50 : 1000;

  const etcd = await startTestEtcd({ onDisk: !tmpfs });
  bench.defer(() => etcd.stop());
  const raw = new Etcd3({ hosts: etcd.endpoint });
  bench.defer(() => raw.close());
  const putIfAbsent = (prefix: string) => async (i: number) => {
    const key = `/bench/${prefix}/10.1.${i >> 8}.${i & 255}`;
    const res = await raw.if(key, 'Create', '==', 0).then(raw.put(key).value('x')).commit();
    if (!res.succeeded) throw new Error('raw put-if-absent conflicted');
  };
  const results: Record<string, Stats> = {};

  // 1. in-process manager: the createEndpoint handler itself
  const dataDir = await mkdtemp(join(tmpdir(), 'ctnet-bench-ipam-'));
  bench.defer(() => rm(dataDir, { recursive: true, force: true }));
  const config = parseManagerConfig({ listen: `127.0.0.1:${await freePort()}`, http: `127.0.0.1:${await freePort()}`, etcdEndpoints: etcd.endpoint, dataDir: join(dataDir, 'inproc') });
  const inproc = await startManager(config, { log: createLogger(() => undefined, 'bench') });
  const closeInproc = once(() => inproc.close());
  bench.defer(closeInproc);
  await inproc.deps.view.whenLoaded();
  {
    const addr = `127.0.0.1:${inproc.grpcPort}`;
    const client = adminClient(addr, join(dataDir, 'inproc'));
    const closeClient = once(() => client.close());
    bench.defer(closeClient);
    const stopAgent = await connectBenchAgent(bench, addr, client, join(dataDir, 'inproc'));
    await call((cb) => client.createNetwork(netReq('inproc', '10.100.0.0/15'), cb));
    const create = (i: number) => handlers.createEndpoint(inproc.deps, CreateReq.fromPartial({ network: 'inproc', node: 'bench', name: `ep${i}` })).then(() => undefined);
    await timed(WARM, CONCURRENCY, putIfAbsent('warm1'));
    await timed(WARM, CONCURRENCY, (i) => create(900_000 + i));
    ({ a: results.rawSeq1!, b: results.inSeq! } = await interleaved(SEQ_N, 1, putIfAbsent('seq1'), (i) => create(i)));
    ({ a: results.rawPar1!, b: results.inPar! } = await interleaved(N, CONCURRENCY, putIfAbsent('par1'), (i) => create(100_000 + i)));

    // TLS with per-call authentication against plaintext, same manager, same run: a second
    // gRPC server in this process serves the same handlers over plaintext with the caller
    // check stubbed (benchmark-only wiring: ctmgr itself has no plaintext listener). The
    // client runs as a process of its own, as the CLI and agents do, alternating in rounds.
    const plain = new Server(serverOptions());
    const benchAdmin = { role: 'admin' as const, name: 'bench', clusterId: '', serial: '', notBefore: new Date(0), notAfter: new Date(8.64e15) };
    plain.addService(ManagerServiceService, createManagerService({ ...inproc.deps, authority: { ...inproc.deps.authority, identify: async () => benchAdmin } }));
    const plainPort = await new Promise<number>((res, rej) => plain.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    bench.defer(() => plain.forceShutdown());
    const admin = JSON.stringify(adminCredential({ adminDir: join(dataDir, 'inproc', 'admin') }));
    const runClient = (target: string, credential: string, n: number, first: number) =>
      new Promise<number>((resolve, reject) => {
        const p = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'benchmarks/support/ipam-client.ts'), target, 'inproc', String(n), String(CONCURRENCY), String(first)], { stdio: ['pipe', 'pipe', 'inherit'] });
        let out = '';
        p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
        p.stdin!.end(credential);
        p.once('exit', (code) => (code === 0 ? resolve((JSON.parse(out) as { rate: number }).rate) : reject(new Error(`ipam-client exited ${code}`))));
      });
    const per = Math.ceil(N / ROUNDS);
    const acc = { plain: 0, tls: 0 };
    for (let r = 0; r < ROUNDS; r++) {
      for (const which of r % 2 === 0 ? (['plain', 'tls'] as const) : (['tls', 'plain'] as const)) {
        const rate = which === 'plain' ? await runClient(`127.0.0.1:${plainPort}`, 'plaintext', per, 300_000 + r * 2 * per) : await runClient(addr, admin, per, 300_000 + (r * 2 + 1) * per);
        acc[which] += per / rate;
      }
    }
    results.plainPar = { rate: (per * ROUNDS) / acc.plain, p50: NaN, p99: NaN };
    results.tlsPar = { rate: (per * ROUNDS) / acc.tls, p50: NaN, p99: NaN };
    plain.forceShutdown();

    // gone before the second part, which must not share the 2 cores with it
    await stopAgent();
    await closeClient();
    await closeInproc();
  }

  // 2. end-to-end: a client calling a ctmgr process over gRPC
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const mgr = spawn(process.execPath, [join(REPO, 'packages/cli/dist/bin/ctmgr'), 'serve', `--listen=127.0.0.1:${grpcPort}`, `--http=127.0.0.1:${httpPort}`, `--etcd-endpoints=${etcd.endpoint}`, `--data-dir=${join(dataDir, 'grpc')}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let mgrErr = '';
  mgr.stderr!.on('data', (c: Buffer) => (mgrErr = (mgrErr + c.toString()).slice(-2000)));
  bench.defer(() => stopChild(mgr));
  for (let i = 0; ; i++) {
    if (await fetch(`http://127.0.0.1:${httpPort}/healthz`).then((r) => r.ok, () => false)) break;
    if (i > 200 || mgr.exitCode !== null) throw new Error(`ctmgr did not become healthy${mgr.exitCode !== null ? ` (exit ${mgr.exitCode})` : ''}: ${mgrErr.trim()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  {
    const addr = `127.0.0.1:${grpcPort}`;
    const client = adminClient(addr, join(dataDir, 'grpc'));
    bench.defer(() => client.close());
    await connectBenchAgent(bench, addr, client, join(dataDir, 'grpc'));
    await call((cb) => client.createNetwork(netReq('grpc', '10.102.0.0/15'), cb));
    const create = async (i: number) => {
      const req: CreateEndpointRequest = CreateReq.fromPartial({ network: 'grpc', node: 'bench', name: `ep${i}` });
      await call((cb) => client.createEndpoint(req, cb));
    };
    await timed(WARM, CONCURRENCY, (i) => create(900_000 + i));
    ({ a: results.rawSeq2!, b: results.grpcSeq! } = await interleaved(SEQ_N, 1, putIfAbsent('seq2'), (i) => create(i)));
    ({ a: results.rawPar2!, b: results.grpcPar! } = await interleaved(N, CONCURRENCY, putIfAbsent('par2'), (i) => create(100_000 + i)));
    // latency of the gRPC path alone, for the table
    results.grpcLat = await timed(LAT_N, CONCURRENCY, (i) => create(200_000 + i));
  }

  const rows = [
    { mode: 'sequential (1 client)', n: SEQ_N, raw: results.rawSeq1!, ctnet: results.inSeq!, path: 'manager (in-process handler)' },
    { mode: `concurrent (${CONCURRENCY} clients)`, n: N, raw: results.rawPar1!, ctnet: results.inPar!, path: 'manager (in-process handler)' },
    { mode: 'sequential (1 client)', n: SEQ_N, raw: results.rawSeq2!, ctnet: results.grpcSeq!, path: 'CLI path (gRPC to a ctmgr process)' },
    { mode: `concurrent (${CONCURRENCY} clients)`, n: N, raw: results.rawPar2!, ctnet: results.grpcPar!, path: 'CLI path (gRPC to a ctmgr process)' },
  ];
  console.log(`\nIPAM allocation rate (endpoint create incl. address claim) — etcd data on ${tmpfs ? 'tmpfs' : 'disk'}; limit and ctnet interleaved in ${ROUNDS} rounds on the same etcd${bench.smoke ? ' (smoke: tiny n, figures mean nothing)' : ''}`);
  console.log('| path | mode | n | raw etcd put-if-absent/s (limit) | ctnet allocations/s | of limit | goal >= 75% |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const ratio = r.ctnet.rate / r.raw.rate;
    console.log(`| ${r.path} | ${r.mode} | ${r.n} | ${r.raw.rate.toFixed(0)} | ${r.ctnet.rate.toFixed(0)} | ${(ratio * 100).toFixed(0)}% | ${ratio >= 0.75 ? 'met' : 'not met'} |`);
  }
  console.log(`gRPC path latency at ${CONCURRENCY} clients: p50 ${results.grpcLat!.p50.toFixed(2)} ms, p99 ${results.grpcLat!.p99.toFixed(2)} ms`);
  const tlsCost = 1 - results.tlsPar!.rate / results.plainPar!.rate;
  console.log('\n| gRPC from a client process to the in-process manager, 16 calls in flight, alternating rounds | allocations/s |');
  console.log('|---|---|');
  console.log(`| plaintext, caller check stubbed (the peer) | ${results.plainPar!.rate.toFixed(0)} |`);
  console.log(`| mutual TLS + per-call authentication (ctnet) | ${results.tlsPar!.rate.toFixed(0)} |`);
  console.log(`TLS cost: ${(tlsCost * 100).toFixed(1)}% of the plaintext rate (goal < 5%: ${tlsCost < 0.05 ? 'met' : 'not met'})`);
  const json = JSON.stringify({ benchmark: 'ipam-alloc', storage: tmpfs ? 'tmpfs' : 'disk', smoke: bench.smoke, rows, tls: { plaintext: results.plainPar, tls: results.tlsPar } });
  if (bench.smoke) {
    console.log(json); // a smoke run never overwrites the recorded results
  } else {
    await mkdir(join(REPO, 'benchmarks/results'), { recursive: true });
    await writeFile(join(REPO, 'benchmarks/results/ipam-alloc.json'), JSON.stringify(JSON.parse(json), null, 2));
    console.log('\n(JSON in benchmarks/results/ipam-alloc.json)');
  }
});
