import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceError } from '@grpc/grpc-js';
import { AgentServiceClient, clientCredentials, clientOptions, type ManagerMessage } from '@ctnet/proto';
import { startTestEtcd, type TestEtcd } from '@ctnet/store';
import { apiClient, connectAgent, httpGet, nodeCredential, startManagerProcess, waitUntil, type AgentConn, type Api, type ManagerProcess } from './harness.js';

// Hostile and careless input against real manager processes on one etcd: each test is named
// after the hole it pins.
const ALREADY_EXISTS = 6;
const INVALID_ARGUMENT = 3;
const RESOURCE_EXHAUSTED = 8;

let etcd: TestEtcd;
let m1: ManagerProcess;
let m2: ManagerProcess;
let a1: Api & { close(): void };
let a2: Api & { close(): void };
let agent: AgentConn;

const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: ServiceError) => e);
const settle = (ps: Promise<unknown>[]) => Promise.all(ps.map((p) => p.then(() => ({ ok: true as const }), (e: ServiceError) => ({ ok: false as const, code: e.code, details: e.details }))));

beforeAll(async () => {
  etcd = await startTestEtcd();
  // Two managers on one etcd: each has its own view, so only etcd can keep them honest.
  m1 = await startManagerProcess({ etcd: etcd.endpoint, args: ['--stream-buffer-events', '2000'] });
  m2 = await startManagerProcess({ etcd: etcd.endpoint });
  a1 = apiClient(m1);
  a2 = apiClient(m2);
  agent = connectAgent(m2, { name: 'h1', addr: '192.168.90.1' }, 0, true);
  await waitUntil(async () => (await a1.listNodes({})).nodes.some((n) => n.status === 'ready'), 20_000);
  await a1.createNetwork({ name: 'app', subnet: '10.91.0.0/16' });
  await waitUntil(async () => (await a2.listNetworks({})).networks.some((n) => n.network?.name === 'app'), 10_000);
}, 60_000);

afterAll(async () => {
  agent?.close();
  a1?.close();
  a2?.close();
  await m1?.stop();
  await m2?.stop();
  await etcd?.stop();
});

describe('hardening', () => {
  it('regression: -p 1-20000 is refused at once (it ran a cubic search that froze the manager); 1,000 ports work and the manager keeps answering', async () => {
    const big = await failure(a1.runContainer({ name: 'p', node: 'h1', network: 'app', cmd: ['true'], publish: ['1-20000'] }));
    expect(big).toMatchObject({ code: INVALID_ARGUMENT, details: expect.stringMatching(/20000 ports, more than the 1000/) });
    const answered: boolean[] = [];
    const pinging = (async () => {
      for (let i = 0; i < 20; i++) answered.push(await a1.listNodes({}).then(() => true, () => false));
    })();
    await metricsMax(m1); // resets the event-loop histogram
    const run = await a1.runContainer({ name: 'p', node: 'h1', network: 'app', cmd: ['true'], publish: ['1-1000'] });
    console.log(`event loop: max delay around a 1,000-port run ${await metricsMax(m1)} ms`);
    await a1.runContainer({ name: 'p2', node: 'h1', network: 'app', cmd: ['true'], publish: ['2001-3000'] });
    console.log(`event loop: max delay around a second 1,000-port run ${await metricsMax(m1)} ms`);
    await a1.removeContainer({ name: 'p2' });
    await pinging;
    expect(answered.every(Boolean)).toBe(true);
    expect(run.container?.ports).toHaveLength(1000);
    expect(new Set(run.container!.ports.map((p) => p.hostPort)).size).toBe(1000);
    // chosen ports are claimed in etcd too: another container asking for one of them is refused, naming the holder
    const clash = await failure(a2.runContainer({ name: 'q', node: 'h1', network: 'app', cmd: ['true'], publish: [`${run.container!.ports[10]!.hostPort}:80`] }));
    expect(clash).toMatchObject({ code: ALREADY_EXISTS, details: expect.stringMatching(/already published by container p on node h1/) });
    await a1.removeContainer({ name: 'p' });
    // and freed with it
    await waitUntil(async () => !(await a2.listContainers({})).containers.some((c) => c.container?.name === 'p'), 10_000);
    await a2.runContainer({ name: 'q', node: 'h1', network: 'app', cmd: ['true'], publish: [`${run.container!.ports[10]!.hostPort}:80`] });
    await a2.removeContainer({ name: 'q' });
  });

  it('regression: two managers granted the same host port twice; now exactly one of 12 racing requests wins', async () => {
    const runs = Array.from({ length: 12 }, (_, i) =>
      (i % 2 ? a1 : a2).runContainer({ name: `race${i}`, node: 'h1', network: 'app', cmd: ['true'], publish: [i % 3 ? '8080:80' : '192.168.90.1:8080:80'] }),
    );
    const results = await settle(runs);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    for (const r of results.filter((x) => !x.ok)) {
      expect(r).toMatchObject({ code: ALREADY_EXISTS, details: expect.stringMatching(/8080\/tcp .*already published by container race\d+ on node h1/) });
    }
    const winners = (await a1.listContainers({})).containers.filter((c) => c.container?.name.startsWith('race'));
    expect(winners).toHaveLength(1);
    // no address leaked by the losers: only the winner's endpoint holds one
    const detail = await a1.inspectNetwork({ nameOrId: 'app' });
    expect(detail.usage?.allocated).toBe(detail.endpoints.length);
    await a1.removeContainer({ name: winners[0]!.container!.name });
  });

  it('regression: a service and a container could take the same name on a network (cache only); both directions are refused, also when racing', async () => {
    await a1.createService({ name: 'web', networks: ['app'], replicas: 0, cmd: ['sleep', 'infinity'] });
    const alias = await failure(a2.runContainer({ name: 'c1', node: 'h1', network: 'app', cmd: ['true'], aliases: ['web'] }));
    expect(alias).toMatchObject({ code: ALREADY_EXISTS, details: expect.stringMatching(/service named web/) });
    await a2.runContainer({ name: 'c2', node: 'h1', network: 'app', cmd: ['true'], aliases: ['api'] });
    const svc = await failure(a1.createService({ name: 'api', networks: ['app'], replicas: 0, cmd: ['true'] }));
    expect(svc).toMatchObject({ code: ALREADY_EXISTS, details: expect.stringMatching(/c2 .*already answers to the name api/) });
    // racing through two managers: one wins
    for (const [svc, container] of [
      ['db', { name: 'c3', aliases: ['db'] }],
      ['cache', { name: 'cache', aliases: [] }],
    ] as const) {
      const results = await settle([
        a1.createService({ name: svc, networks: ['app'], replicas: 0, cmd: ['true'] }),
        a2.runContainer({ ...container, aliases: [...container.aliases], node: 'h1', network: 'app', cmd: ['true'] }),
      ]);
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      for (const r of results.filter((x) => !x.ok)) expect(r).toMatchObject({ code: ALREADY_EXISTS });
    }
    // a removed service frees its name
    await a1.removeService({ name: 'web' });
    await a2.runContainer({ name: 'c4', node: 'h1', network: 'app', cmd: ['true'], aliases: ['web'] });
  });

  it('regression: uncapped records broke every listing; sizes are capped with clear errors and listings page through etcd', async () => {
    const huge = await failure(a1.runContainer({ name: 'fat', node: 'h1', network: 'none', cmd: ['true'], env: { BIG: 'x'.repeat(70_000) } }));
    expect(huge).toMatchObject({ code: INVALID_ARGUMENT, details: expect.stringMatching(/environment is \d+ bytes, more than the 65536 allowed/) });
    const aliases = await failure(a1.runContainer({ name: 'fat', node: 'h1', network: 'app', cmd: ['true'], aliases: Array.from({ length: 65 }, (_, i) => `a${i}`) }));
    expect(aliases).toMatchObject({ code: INVALID_ARGUMENT, details: expect.stringMatching(/too many network aliases: 65 given, at most 64/) });
    const labels = await failure(a1.createNetwork({ name: 'lbl', labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }));
    expect(labels).toMatchObject({ code: INVALID_ARGUMENT, details: expect.stringMatching(/too many labels/) });
    // 100 records near the cap are ≈6 MiB: more than one etcd response may carry
    const env = { BIG: 'y'.repeat(60_000) };
    for (let i = 0; i < 100; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => a1.runContainer({ name: `big${i + j}`, node: 'h1', network: 'none', cmd: ['true'], env })));
    }
    expect((await a2.listContainers({})).containers.filter((c) => c.container?.name.startsWith('big'))).toHaveLength(100);
    // a manager starting now loads it all
    const m3 = await startManagerProcess({ etcd: etcd.endpoint });
    try {
      const a3 = apiClient(m3);
      expect((await a3.listContainers({})).containers.filter((c) => c.container?.name.startsWith('big'))).toHaveLength(100);
      a3.close();
    } finally {
      await m3.stop();
    }
    for (let i = 0; i < 100; i++) await a1.removeContainer({ name: `big${i}` });
  }, 60_000);

  it('regression: routes from a Hello could block all subnet choice (0.0.0.0/1 + 128.0.0.0/1); absurd prefixes are ignored', async () => {
    const bad = connectAgent(m1, { name: 'h9', addr: '192.168.90.9', routes: ['0.0.0.0/1', '128.0.0.0/1', '10.0.0.0/9', '192.168.90.0/24'] });
    try {
      await waitUntil(async () => (await a1.listNodes({})).nodes.some((n) => n.node?.name === 'h9'), 10_000);
      const h9 = (await a1.inspectNode({ name: 'h9' })).status!.node!;
      expect(h9.routes).toEqual(['10.0.0.0/9', '192.168.90.0/24']);
      const net = await a1.createNetwork({ name: 'auto' });
      expect(Number(net.subnet.split('.')[1])).toBeGreaterThanOrEqual(128); // clear of h9's 10.0.0.0/9, from what is left
    } finally {
      bad.close();
    }
  });

  it('regression: an ack of any revision (2^40, say) marked a node converged; acks beyond what was sent are refused, and so is a second Hello', async () => {
    const liar = connectAgent(m1, { name: 'h7', addr: '192.168.90.7' });
    await waitUntil(() => liar.messages.length > 0, 10_000);
    liar.ack(2 ** 40);
    await waitUntil(() => liar.errors.length > 0, 10_000);
    expect(liar.errors[0]).toMatchObject({ code: INVALID_ARGUMENT, details: expect.stringMatching(/ack of revision 1099511627776, but this stream has only sent up to/) });
    liar.close();
    const lag = (await a1.inspectNode({ name: 'h7' })).status!.ackedRevision;
    expect(lag).toBeLessThan(2 ** 40);

    const twice = new AgentServiceClient(m1.addr, clientCredentials(await nodeCredential(m1, 'h8')), clientOptions()).connect();
    const errors: ServiceError[] = [];
    twice.on('error', (e: ServiceError) => errors.push(e));
    twice.on('data', () => undefined);
    const hello = { msg: { $case: 'hello' as const, value: { node: { name: 'h8', addr: '192.168.90.8', hostname: 'h8', labels: {}, routes: [], registeredAt: '', problems: {}, dockerNetworks: {} }, resumeRevision: 0 } } };
    twice.write(hello);
    twice.write(hello);
    await waitUntil(() => errors.length > 0, 10_000);
    expect(errors[0]).toMatchObject({ code: INVALID_ARGUMENT, details: expect.stringMatching(/Hello sent twice/) });
    twice.cancel();
  });

  it('regression: a slow agent grew the manager without bound; it is cut off and the others keep streaming', async () => {
    // m1 runs with --stream-buffer-events 2000; this agent registers and is then stopped, so
    // nothing it is sent leaves the manager's buffers
    const stuck = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'stuck-agent.mjs'), m1.addr, 'h6', '192.168.90.6'], { stdio: ['pipe', 'pipe', 'inherit'] });
    stuck.stdin!.end(JSON.stringify(await nodeCredential(m1, 'h6')));
    let out = '';
    stuck.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await waitUntil(() => out.includes('ready'), 15_000, () => out);
      stuck.kill('SIGSTOP');
      const fine = connectAgent(m1, { name: 'h5', addr: '192.168.90.5' }, 0, true);
      await a1.createNetwork({ name: 'flood', subnet: '172.30.0.0/16' });
      const aliases = Array.from({ length: 16 }, (_, i) => `alias-${i}`);
      let cut = false;
      for (let i = 0; i < 6000 && !cut; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => a1.createEndpoint({ network: 'flood', node: 'h1', name: `f${i + j}`, aliases })));
        cut = /agent stream failed.*h6.*not reading/.test(m1.output());
      }
      expect(m1.output()).toMatch(/agent stream failed.*h6.*not reading its stream/);
      stuck.kill('SIGCONT');
      await waitUntil(() => out.includes('status'), 20_000, () => out);
      expect(out).toMatch(new RegExp(`status ${RESOURCE_EXHAUSTED} .*not reading its stream`));
      expect(fine.errors).toEqual([]);
      const seen = (m: ManagerMessage) => (m.msg?.$case === 'changes' ? m.msg.value.events.length : 0);
      expect(fine.messages.reduce((n, m) => n + seen(m), 0)).toBeGreaterThan(0);
      fine.close();
    } finally {
      stuck.kill('SIGKILL');
    }
  }, 120_000);

  it('regression: /healthz reports etcd as it is now (see etcd-failure.test.ts for the outage); healthy here', async () => {
    expect((await httpGet(`http://${m1.httpAddr}/healthz`)).status).toBe(200);
  });
});

/** The manager's largest event-loop delay since the last scrape, in ms (prom-client resets it per scrape). */
async function metricsMax(m: ManagerProcess): Promise<number> {
  const text = (await httpGet(`http://${m.httpAddr}/metrics`)).body;
  const line = text.split('\n').find((l) => l.startsWith('ctnet_manager_nodejs_eventloop_lag_max_seconds '));
  return Math.round(Number(line?.split(' ')[1] ?? 'NaN') * 1000);
}

describe('nodes that are gone', () => {
  it('regression: pooled bridge subnets were never freed (256 node names exhausted the default pool); a node down past --node-retention is forgotten and its subnets freed', async () => {
    const m = await startManagerProcess({ etcd: etcd.endpoint, args: ['--node-grace', '1s', '--node-retention', '2s', '--node-ttl', '2s'] });
    const api = apiClient(m);
    try {
      await api.createNetwork({ name: 'pool', driver: 'bridge', subnet: '172.31.0.0/20' });
      const gone = connectAgent(m, { name: 'h40', addr: '192.168.90.40' }, 0, true);
      await waitUntil(async () => (await api.listNodes({})).nodes.some((n) => n.node?.name === 'h40' && n.status === 'ready'), 10_000);
      await api.runContainer({ name: 'pc', node: 'h40', network: 'pool', cmd: ['true'] });
      const slices = async () => (await api.inspectNetwork({ nameOrId: 'pool' })).network!.hostSubnets;
      expect(Object.keys(await slices())).toContain('h40');
      gone.close();
      // down -> its containers go after the grace, the node and its slice after the retention
      await waitUntil(async () => !(await api.listNodes({})).nodes.some((n) => n.node?.name === 'h40'), 30_000, () => m.output());
      expect(Object.keys(await slices())).not.toContain('h40');
      expect((await api.listContainers({})).containers.some((c) => c.container?.name === 'pc')).toBe(false);
      expect(m.output()).toMatch(/node down beyond the retention period: removed it and freed its subnets.*h40/);
    } finally {
      api.close();
      await m.stop();
    }
  }, 60_000);
});
