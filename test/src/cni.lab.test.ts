import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailableReason, startLab, type Lab } from './lab/lab.js';
import { run, spawnLogged, type LabProcess } from './lab/process.js';
import { REPO, ok, waitUntil } from './harness.js';

// The CNI plugin driven exactly as the specification describes: environment and stdin, no
// runtime. Every verb, every error code, and what is left behind (nothing).
const reason = labUnavailableReason();
const PLUGIN = join(REPO, 'packages/cni/dist/ctnet');
let lab: Lab;
let nsCount = 0;

interface Call {
  code: number;
  out: Record<string, unknown>;
  raw: string;
}

const socketOf = (host: string) => join(lab.workDir, host, 'cni.sock');
const config = (host: string, extra: Record<string, unknown> = {}) => ({ cniVersion: '1.1.0', name: 'app', type: 'ctnet', agentSocket: socketOf(host), ...extra });

async function cni(command: string, env: Record<string, string>, stdin: string | Record<string, unknown>): Promise<Call> {
  const res = await run([PLUGIN], {
    env: { PATH: process.env.PATH, CNI_COMMAND: command, CNI_PATH: '/usr/lib/cni', ...env },
    input: typeof stdin === 'string' ? stdin : JSON.stringify(stdin),
    timeoutMs: 60_000,
  });
  let out: Record<string, unknown> = {};
  if (res.stdout.trim()) out = JSON.parse(res.stdout) as Record<string, unknown>;
  return { code: res.code, out, raw: res.stdout };
}

/** A namespace as a runtime would make one (ours, so the lab removes it whatever happens). */
async function newNetns(): Promise<string> {
  const name = `${lab.prefix}-k${++nsCount}`;
  await ok(run(['ip', 'netns', 'add', name]));
  return name;
}
const pathOf = (ns: string) => `/run/netns/${ns}`;
const attach = (ns: string, id: string, extra: Record<string, string> = {}) => ({ CNI_CONTAINERID: id, CNI_NETNS: pathOf(ns), CNI_IFNAME: 'eth0', ...extra });
const addressOf = (r: Call) => ((r.out.ips as { address: string }[])[0]!.address);
const usage = async (net: string) => (JSON.parse(await ok(lab.ctmgr('network', 'inspect', net))) as { endpoints?: unknown[] }[])[0]!.endpoints?.length ?? 0;
const FIXTURES = join(REPO, 'test/src/lab/fixtures');
/** A TCP server inside a runtime's namespace (nsenter; bounded by timeout) that answers each connection with a line. */
const serveIn = (ns: string, name: string, port: number): LabProcess =>
  spawnLogged(`whoami ${name}`, ['nsenter', `--net=${pathOf(ns)}`, '--', 'timeout', '120', process.execPath, join(FIXTURES, 'tcp-whoami.mjs'), String(port)], join(lab.workDir, `whoami-${name}.log`), process.env);
/** Whether a connection from a host to addr:port is answered. */
const answered = async (host: string, addr: string, port: number) => {
  const r = await lab.exec(host, process.execPath, join(FIXTURES, 'tcp-probe.mjs'), 'once', addr, String(port), '1', '2000');
  return r.code === 0 && (JSON.parse(r.stdout) as { answers: string[] }).answers.length === 1;
};
const records = (host: string) => readdirSync(join(lab.workDir, host, 'sandboxes')).filter((f) => f.endsWith('.json'));

describe.skipIf(reason !== undefined)(`CNI plugin, driven as the spec says${reason ? ` (skipped: ${reason})` : ''}`, () => {
  beforeAll(async () => {
    lab = await startLab({ hosts: 2, agents: true, resyncSeconds: 2 });
    await waitUntil(async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length === 2, 30_000, () => lab.logs(20));
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.40.0.0/24', 'app'));
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.41.0.0/29', 'tiny'));
    let status: Call | undefined;
    await waitUntil(async () => (status = await cni('STATUS', {}, config('h1'))).code === 0 && (status = await cni('STATUS', {}, config('h2'))).code === 0, 20_000, () => `${status?.raw}\n${lab.logs(20)}`);
  }, 90_000);
  afterAll(async () => {
    await lab?.destroy();
  });

  it('VERSION is answered by the plugin alone', async () => {
    const r = await cni('VERSION', {}, { cniVersion: '1.1.0', agentSocket: '/nonexistent/cni.sock' });
    expect(r.code).toBe(0);
    expect(r.out).toEqual({ cniVersion: '1.1.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });

  it('ADD on two hosts: addresses from the cluster IPAM, reachable across the overlay by address and by name', async () => {
    const before = await usage('app');
    const k1 = await newNetns();
    const k2 = await newNetns();
    const a = await cni('ADD', attach(k1, 'ctr-a', { CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-a' }), config('h1'));
    expect(a.code, a.raw).toBe(0);
    const b = await cni('ADD', attach(k2, 'ctr-b'), config('h2', { waitConverged: true, args: { cni: { labels: [{ key: 'name', value: 'web-b' }] } } }));
    expect(b.code, b.raw).toBe(0);
    expect(addressOf(a)).toMatch(/^10\.40\.0\.\d+\/24$/);
    expect(a.out).toMatchObject({ cniVersion: '1.1.0', routes: [{ dst: '0.0.0.0/0', gw: '10.40.0.1' }], dns: { nameservers: ['10.40.0.1'] } });
    const itf = (a.out.interfaces as { name: string; mac?: string; sandbox?: string }[]).find((i) => i.sandbox);
    expect(itf).toMatchObject({ name: 'eth0', sandbox: pathOf(k1) });
    // The interface is there, with that address and MAC, and a default route via the gateway.
    const inside = await ok(run(['ip', '-n', k1, '-j', 'addr', 'show', 'eth0']));
    expect(inside).toContain(addressOf(a).split('/')[0]);
    expect(inside.toLowerCase()).toContain(itf!.mac!.toLowerCase());
    expect(await ok(run(['ip', '-n', k1, 'route', 'show', 'default']))).toContain('via 10.40.0.1 dev eth0');
    expect(await usage('app')).toBe(before + 2);
    // waitConverged: b's ADD returned after every host applied it, so a reaches it at once.
    const bIp = addressOf(b).split('/')[0]!;
    await ok(run(['ip', 'netns', 'exec', k1, 'ping', '-c1', '-W2', bIp]));
    await waitUntil(async () => (await run(['ip', 'netns', 'exec', k1, 'dig', '+short', '+time=1', '+tries=1', '@10.40.0.1', 'web-b'])).stdout.trim() === bIp, 15_000, () => lab.logs(10));
    await waitUntil(async () => (await run(['ip', 'netns', 'exec', k2, 'dig', '+short', '+time=1', '+tries=1', '@10.40.0.1', 'web-a'])).stdout.trim() === addressOf(a).split('/')[0], 15_000);

    // A repeated ADD for the same (container id, ifname) returns the same result.
    const again = await cni('ADD', attach(k1, 'ctr-a', { CNI_ARGS: 'K8S_POD_NAME=web-a' }), config('h1'));
    expect(again.code, again.raw).toBe(0);
    expect(again.out).toEqual(a.out);
    expect(await usage('app')).toBe(before + 2);

    // CHECK passes while the namespace matches the result, and fails precisely when it does not.
    const checked = await cni('CHECK', attach(k1, 'ctr-a'), config('h1', { prevResult: a.out }));
    expect(checked.code, checked.raw).toBe(0);
    await ok(run(['ip', '-n', k1, 'addr', 'flush', 'dev', 'eth0']));
    const drifted = await cni('CHECK', attach(k1, 'ctr-a'), config('h1', { prevResult: a.out }));
    expect(drifted.code).toBe(1);
    expect(drifted.out).toMatchObject({ code: 101 });
    expect(String(drifted.out.msg)).toContain(`not ${addressOf(a)}`);
    const unknown = await cni('CHECK', attach(k1, 'nobody'), config('h1', { prevResult: a.out }));
    expect(unknown.out).toMatchObject({ code: 3 });
    await ok(run(['ip', '-n', k1, 'addr', 'add', addressOf(a), 'dev', 'eth0']));
    await ok(run(['ip', '-n', k1, 'route', 'replace', 'default', 'via', '10.40.0.1', 'dev', 'eth0']));
    expect((await cni('CHECK', attach(k1, 'ctr-a'), config('h1', { prevResult: a.out }))).code).toBe(0);

    // DEL releases the address and withdraws the name; a second DEL, and a DEL whose namespace is gone, succeed.
    const del = await cni('DEL', attach(k2, 'ctr-b'), config('h2', { waitConverged: true }));
    expect(del.code, del.raw).toBe(0);
    expect(del.raw).toBe('');
    expect((await run(['ip', 'netns', 'exec', k1, 'dig', '+short', '+time=1', '+tries=1', '@10.40.0.1', 'web-b'])).stdout.trim()).toBe('');
    expect((await cni('DEL', attach(k2, 'ctr-b'), config('h2'))).code).toBe(0);
    // The same key again at once (a runtime restarting a container): a new attachment (it
    // used to wait for the removed one until its deadline, then fail).
    const readd = await cni('ADD', attach(k2, 'ctr-b'), config('h2'));
    expect(readd.code, readd.raw).toBe(0);
    expect(addressOf(readd)).not.toBe('');
    expect((await cni('DEL', attach(k2, 'ctr-b'), config('h2'))).code).toBe(0);
    await ok(run(['ip', 'netns', 'del', k1]));
    const gone = await cni('DEL', { CNI_CONTAINERID: 'ctr-a', CNI_NETNS: '', CNI_IFNAME: 'eth0' }, config('h1'));
    expect(gone.code, gone.raw).toBe(0);
    expect(await usage('app')).toBe(before);
    expect(records('h1').concat(records('h2'))).toEqual([]);
    expect(await ok(lab.exec('h1', 'ip', '-br', 'link'))).not.toMatch(/ctv-/);
  });

  it('refuses bad input with the spec\'s codes, naming the field, and leaves nothing half-made', async () => {
    const k = await newNetns();
    const before = await usage('app');
    const expectError = async (r: Promise<Call>, code: number, msg: RegExp) => {
      const res = await r;
      expect(res.code, res.raw).toBe(1);
      expect(res.out.code, res.raw).toBe(code);
      expect(String(res.out.msg)).toMatch(msg);
      expect(res.out.cniVersion).toBeDefined();
    };
    await expectError(cni('ADD', { CNI_NETNS: pathOf(k), CNI_IFNAME: 'eth0' }, config('h1')), 4, /CNI_CONTAINERID is not set/);
    await expectError(cni('ADD', attach(k, 'x', { CNI_IFNAME: 'this-name-is-too-long' }), config('h1')), 4, /CNI_IFNAME/);
    await expectError(cni('BOGUS', {}, config('h1')), 4, /CNI_COMMAND "BOGUS"/);
    await expectError(cni('ADD', attach(k, 'x'), '{not json'), 6, /not a JSON object/);
    await expectError(cni('ADD', attach(k, 'x'), `{"agentSocket": "${socketOf('h1')}", "cniVersion": }`), 6, /is not JSON/);
    await expectError(cni('ADD', attach(k, 'x'), { cniVersion: '1.1.0', type: 'ctnet', agentSocket: socketOf('h1') }), 7, /no "name"/);
    await expectError(cni('ADD', attach(k, 'x'), config('h1', { cniVersion: '0.1.0' })), 1, /cniVersion 0\.1\.0 is not supported/);
    await expectError(cni('ADD', attach(k, 'x'), config('h1', { name: 'nosuchnet' })), 7, /nosuchnet/);
    await expectError(cni('ADD', attach(k, 'x', { CNI_NETNS: join(lab.workDir, 'manager.log') }), config('h1')), 4, /is not a network namespace/);
    await expectError(cni('ADD', attach(k, 'x', { CNI_IFNAME: 'lo' }), config('h1')), 4, /CNI_IFNAME lo already exists/);
    await expectError(cni('ADD', attach(k, 'x', { CNI_NETNS: `/run/netns/${lab.hosts[0]!.ns}` }), config('h1')), 4, /is this host's own network namespace/);
    await expectError(cni('GC', {}, config('h1')), 7, /cni\.dev\/valid-attachments/);
    await expectError(cni('CHECK', attach(k, 'x'), config('h1', { cniVersion: '0.3.1', prevResult: {} })), 1, /CHECK needs cniVersion 0\.4\.0/);
    await expectError(cni('ADD', attach(k, 'x'), config('h1', { agentSocket: join(lab.workDir, 'nobody.sock') })), 11, /not reachable/);
    await expectError(cni('STATUS', {}, config('h1', { agentSocket: join(lab.workDir, 'nobody.sock') })), 50, /not reachable/);
    // An exhausted range: the message names the network; the failed ADDs hold nothing.
    const tiny: string[] = [];
    let exhausted: Call | undefined;
    for (let i = 0; i < 10 && !exhausted; i++) {
      const ns = await newNetns();
      const r = await cni('ADD', attach(ns, `tiny-${i}`), config('h1', { name: 'tiny' }));
      if (r.code === 0) tiny.push(`tiny-${i}`);
      else exhausted = r;
    }
    expect(exhausted?.out).toMatchObject({ code: 100 });
    expect(String(exhausted?.out.msg)).toContain('tiny');
    for (const id of tiny) expect((await cni('DEL', { CNI_CONTAINERID: id, CNI_IFNAME: 'eth0' }, config('h1', { name: 'tiny' }))).code).toBe(0);
    expect(await usage('tiny')).toBe(0);
    expect(await usage('app')).toBe(before);
    expect(records('h1')).toEqual([]);
    expect(await ok(run(['ip', '-n', k, '-br', 'link']))).not.toMatch(/eth0/);
  });

  it('publishes runtimeConfig portMappings itself, and chains with Debian\'s portmap for hostPort', async () => {
    const h1 = lab.hosts[0]!;
    // The capability declared on ctnet: the runtime hands the mappings to us, ctnet publishes them.
    const own = await newNetns();
    const mapped = { runtimeConfig: { portMappings: [{ hostPort: 18081, containerPort: 8080, protocol: 'tcp', hostIP: '' }] } };
    const a = await cni('ADD', attach(own, 'pm-own'), config('h1', mapped));
    expect(a.code, a.raw).toBe(0);
    const web1 = serveIn(own, 'own', 8080);
    // Declared on portmap instead: ctnet attaches, portmap (next in the chain) maps from prevResult.
    const chained = await newNetns();
    const b = await cni('ADD', attach(chained, 'pm-chain'), config('h1', { cniVersion: '1.0.0' }));
    expect(b.code, b.raw).toBe(0);
    const portmap = (command: string) =>
      run(['nsenter', `--net=/run/netns/${h1.ns}`, '--', '/usr/lib/cni/portmap'], {
        env: { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: 'pm-chain', CNI_NETNS: pathOf(chained), CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' },
        input: JSON.stringify({ cniVersion: '1.0.0', name: 'app', type: 'portmap', capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 18082, containerPort: 9090, protocol: 'tcp' }] }, prevResult: b.out }),
      });
    const pm = await portmap('ADD');
    expect(pm.code, pm.stdout + pm.stderr).toBe(0);
    const web2 = serveIn(chained, 'chained', 9090);
    try {
      await waitUntil(() => answered('h2', h1.addr, 18081), 20_000, () => lab.logs(10));
      await waitUntil(() => answered('h2', h1.addr, 18082), 20_000, () => lab.logs(10));
      // Each mapping reaches its own container only.
      expect(await answered('h2', h1.addr, 18083)).toBe(false);
    } finally {
      await web1.stop('SIGKILL');
      await web2.stop('SIGKILL');
    }
    expect((await portmap('DEL')).code).toBe(0);
    expect((await cni('DEL', attach(chained, 'pm-chain'), config('h1', { cniVersion: '1.0.0' }))).code).toBe(0);
    expect((await cni('DEL', attach(own, 'pm-own'), config('h1', mapped))).code).toBe(0);
    // The host port goes with the attachment.
    await waitUntil(async () => !(await answered('h2', h1.addr, 18081)), 10_000);
  });

  it('200 ADD/DEL cycles with the agent killed -9 midway leave no address, interface or record behind (after GC)', async () => {
    const before = await usage('app');
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      if (i === 110) lab.startAgent('h1');
      const ns = await newNetns();
      const adding = cni('ADD', attach(ns, `cycle-${i}`), config('h1'));
      // Killed in the middle of an ADD: whatever it had done must be found and undone later.
      if (i === 100) await new Promise((r) => setTimeout(r, 15)).then(() => lab.stopAgent('h1', 'SIGKILL'));
      const add = await adding;
      // While the agent is down, ADD says "try again later" (11); nothing else is acceptable.
      if (add.code !== 0) {
        expect(add.out.code, add.raw).toBe(11);
        refused++;
      }
      await cni('DEL', attach(ns, `cycle-${i}`), config('h1'));
      await ok(run(['ip', 'netns', 'del', ns]));
      if (i === 110) await waitUntil(async () => (await cni('STATUS', {}, config('h1'))).code === 0, 30_000, () => lab.agentLog('h1'));
    }
    expect(refused).toBeGreaterThanOrEqual(10);
    expect((await cni('GC', {}, config('h1', { 'cni.dev/valid-attachments': [] }))).code).toBe(0);
    expect(await usage('app')).toBe(before);
    await waitUntil(() => records('h1').length === 0, 15_000, () => lab.agentLog('h1'));
    expect(await ok(lab.exec('h1', 'ip', '-br', 'link'))).not.toMatch(/ctv-/);
    expect(lab.namespaces().filter((n) => n.startsWith(lab.hosts[0]!.sandboxPrefix))).toEqual([]);
  }, 300_000);

  it('STATUS says 50 while the agent has no manager, and GC releases every attachment not listed', async () => {
    const keep = await newNetns();
    const drop = await newNetns();
    expect((await cni('ADD', attach(keep, 'keep'), config('h1'))).code).toBe(0);
    expect((await cni('ADD', attach(drop, 'drop'), config('h1'))).code).toBe(0);
    const before = await usage('app');
    // Another network's GC lists only its own attachments: it releases none of these.
    const other = await cni('GC', {}, config('h1', { name: 'tiny', 'cni.dev/valid-attachments': [] }));
    expect(other.code, other.raw).toBe(0);
    expect(await usage('app')).toBe(before);
    const gc = await cni('GC', {}, config('h1', { 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] }));
    expect(gc.code, gc.raw).toBe(0);
    expect(await usage('app')).toBe(before - 1);
    expect(await ok(run(['ip', '-n', drop, '-br', 'link']))).not.toMatch(/eth0/);
    expect(await ok(run(['ip', '-n', keep, '-br', 'link']))).toMatch(/eth0/);

    await lab.stopManager();
    try {
      await waitUntil(async () => (await cni('STATUS', {}, config('h1'))).code === 1, 30_000, () => lab.agentLog('h1'));
      const down = await cni('STATUS', {}, config('h1'));
      expect(down.out).toMatchObject({ code: 50 });
      const add = await cni('ADD', attach(await newNetns(), 'while-down'), config('h1'));
      expect(add.out).toMatchObject({ code: 11 });
    } finally {
      await lab.startManager();
    }
    await waitUntil(async () => (await cni('STATUS', {}, config('h1'))).code === 0, 30_000, () => lab.agentLog('h1'));
    expect((await cni('GC', {}, config('h1', { 'cni.dev/valid-attachments': [] }))).code).toBe(0);
    expect(await usage('app')).toBe(before - 2);
    expect(records('h1')).toEqual([]);
  });
});
