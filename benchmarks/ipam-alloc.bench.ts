/**
 * IPAM allocation rate: endpoint create through ctmgr's gRPC API (address claim + endpoint
 * record in one etcd transaction), sequential and with 16 concurrent clients, beside the raw
 * etcd put-if-absent rate on the same etcd in the same run (the limit). Goal: >= 75% of raw.
 *
 *   npm run bench -- [--tmpfs] [--n 5000]
 */
import { spawn } from 'node:child_process';
import { writeFile, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Etcd3 } from 'etcd3';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { AgentServiceClient, ManagerServiceClient, type CreateEndpointRequest } from '@ctnet/proto';
import { freePort, startTestEtcd } from '@ctnet/store';

const args = process.argv.slice(2);
const tmpfs = args.includes('--tmpfs');
const nIdx = args.indexOf('--n');
const N = nIdx >= 0 ? Number(args[nIdx + 1]) : 5000;
const SEQ_N = Math.min(1000, N);
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

async function main(): Promise<void> {
  const etcd = await startTestEtcd({ onDisk: !tmpfs });
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  const mgr = spawn(process.execPath, [join(REPO, 'packages/cli/dist/main.js'), 'serve', `--listen=127.0.0.1:${grpcPort}`, `--http=127.0.0.1:${httpPort}`, `--etcd-endpoints=${etcd.endpoint}`], { stdio: 'ignore' });
  try {
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${httpPort}/healthz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 200) throw new Error('ctmgr did not become healthy');
      await new Promise((r) => setTimeout(r, 50));
    }
    const raw = new Etcd3({ hosts: etcd.endpoint });
    const putIfAbsent = (prefix: string) => async (i: number) => {
      const key = `/bench/${prefix}/10.1.${i >> 8}.${i & 255}`;
      const res = await raw.if(key, 'Create', '==', 0).then(raw.put(key).value('x')).commit();
      if (!res.succeeded) throw new Error('raw put-if-absent conflicted');
    };

    const addr = `127.0.0.1:${grpcPort}`;
    const client = new ManagerServiceClient(addr, credentials.createInsecure());
    const agent = new AgentServiceClient(addr, credentials.createInsecure()).connect();
    agent.write({ msg: { $case: 'hello', value: { node: { name: 'bench', addr: '192.168.99.1', hostname: 'bench', labels: {}, routes: [], registeredAt: '' }, resumeRevision: 0 } } });
    agent.on('data', () => undefined);
    agent.on('error', () => undefined);
    const call = <Res>(fn: (cb: (e: ServiceError | null, r: Res) => void) => void) =>
      new Promise<Res>((res, rej) => fn((e, r) => (e ? rej(e) : res(r))));
    for (let i = 0; i < 100; i++) {
      if ((await call<{ nodes: unknown[] }>((cb) => client.listNodes({}, cb))).nodes.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await call((cb) => client.createNetwork({ name: 'bench-seq', driver: 'overlay', subnet: '10.100.0.0/16', gateway: '', ipRange: '', auxAddresses: {}, attachable: false, internal: false, options: {}, labels: {} }, cb));
    await call((cb) => client.createNetwork({ name: 'bench-par', driver: 'overlay', subnet: '10.101.0.0/16', gateway: '', ipRange: '', auxAddresses: {}, attachable: false, internal: false, options: {}, labels: {} }, cb));
    const create = (network: string) => async (i: number) => {
      const req: CreateEndpointRequest = { network, node: 'bench', name: `ep${i}`, aliases: [], ip: '', mac: '' };
      await call((cb) => client.createEndpoint(req, cb));
    };

    // warm-up both paths
    await timed(200, CONCURRENCY, putIfAbsent('warm'));
    await timed(200, CONCURRENCY, async (i) => create('bench-seq')(100_000 + i).then(() => call((cb) => client.deleteEndpoint({ network: 'bench-seq', name: `ep${100_000 + i}` }, cb))).then(() => undefined));

    const rawSeq = await timed(SEQ_N, 1, putIfAbsent('seq'));
    const ctSeq = await timed(SEQ_N, 1, create('bench-seq'));
    const rawPar = await timed(N, CONCURRENCY, putIfAbsent('par'));
    const ctPar = await timed(N, CONCURRENCY, create('bench-par'));

    const rows = [
      { mode: 'sequential (1 client)', n: SEQ_N, raw: rawSeq, ctnet: ctSeq },
      { mode: `concurrent (${CONCURRENCY} clients)`, n: N, raw: rawPar, ctnet: ctPar },
    ];
    console.log(`\nIPAM allocation rate — etcd data on ${tmpfs ? 'tmpfs' : 'disk'}; ctnet = endpoint create over gRPC to a ctmgr process`);
    console.log('| mode | n | raw etcd put-if-absent/s | ctnet allocations/s | ratio | goal | ctnet p50 ms | ctnet p99 ms |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of rows) {
      const ratio = r.ctnet.rate / r.raw.rate;
      console.log(`| ${r.mode} | ${r.n} | ${r.raw.rate.toFixed(0)} | ${r.ctnet.rate.toFixed(0)} | ${(ratio * 100).toFixed(0)}% | >= 75% ${ratio >= 0.75 ? 'met' : 'NOT met'} | ${r.ctnet.p50.toFixed(2)} | ${r.ctnet.p99.toFixed(2)} |`);
    }
    const json = JSON.stringify({ benchmark: 'ipam-alloc', storage: tmpfs ? 'tmpfs' : 'disk', rows }, null, 2);
    await mkdir(join(REPO, 'benchmarks/results'), { recursive: true });
    await writeFile(join(REPO, 'benchmarks/results/ipam-alloc.json'), json);
    console.log(`\n(JSON in benchmarks/results/ipam-alloc.json)`);
    agent.cancel();
    client.close();
    raw.close();
  } finally {
    mgr.kill('SIGTERM');
    await new Promise((r) => mgr.once('exit', r));
    await etcd.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
