import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailableReason, startLab, type Lab } from './lab/lab.js';
import { waitUntil, ok } from './harness.js';

// The VXLAN overlay across three hosts (network namespaces), with real agents.
const reason = labUnavailableReason();
let lab: Lab;

const json = async <T>(p: Promise<{ code: number; stdout: string; stderr: string }>): Promise<T> => JSON.parse(await ok(p)) as T;
const ping = (host: string, sandbox: string, ip: string, ...extra: string[]) =>
  lab.ctagent(host, 'exec', sandbox, '--', 'ping', '-c1', '-W1', ...extra, ip);
const reachable = async (host: string, sandbox: string, ip: string) => (await ping(host, sandbox, ip)).code === 0;
const run = async (name: string, node: string, network = 'app') => {
  await ok(lab.ctmgr('run', '-d', '--name', name, '--network', network, '--node', node, '--', 'sleep', 'infinity'));
  const [c] = await json<{ endpoints: { ip: string; mac: string }[] }[]>(lab.ctmgr('inspect', name));
  return { ip: c!.endpoints[0]!.ip, mac: c!.endpoints[0]!.mac };
};
const netId = async (name: string) => (await json<{ id: string }[]>(lab.ctmgr('network', 'inspect', name)))[0]!.id;

describe.skipIf(reason !== undefined)(`overlay across hosts${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let c1: { ip: string; mac: string };
  let c3: { ip: string; mac: string };
  let vx: string;

  beforeAll(async () => {
    lab = await startLab({ hosts: 3, agents: true, resyncSeconds: 1, graceSeconds: 4, nodeTtlSeconds: 2 });
    await waitUntil(async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length === 3, 30_000, () => lab.logs(20));
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.10.0.0/24', 'app'));
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.20.0.0/24', 'other'));
    c1 = await run('c1', 'h1');
    c3 = await run('c3', 'h3');
    vx = `ctvx-${(await netId('app')).slice(0, 8)}`;
  }, 90_000);
  afterAll(async () => lab?.destroy());

  it('sandboxes on h1 and h3 ping each other over VXLAN', async () => {
    await waitUntil(() => reachable('h1', 'c1', c3.ip), 15_000, () => lab.logs(30));
    expect(await reachable('h3', 'c3', c1.ip)).toBe(true);
    // h1 holds a permanent FDB entry (MAC -> h3's VTEP) and neighbour entry for c3, no flooding entry
    const fdb = await ok(lab.exec('h1', 'bridge', 'fdb', 'show', 'dev', vx));
    expect(fdb).toContain(`${c3.mac} dst ${lab.hosts[2]!.addr} self permanent`);
    expect(fdb).not.toContain('00:00:00:00:00:00');
    expect(await ok(lab.exec('h1', 'ip', 'neigh', 'show', 'dev', vx))).toContain(`${c3.ip} lladdr ${c3.mac} PERMANENT`);
    // h2 runs nothing on the network, so it has no device for it
    expect(await ok(lab.exec('h2', 'ip', '-br', 'link'))).not.toContain('ctvx-');
  });

  it('passes the largest unfragmented packet at the overlay MTU and fails cleanly one byte above', async () => {
    // MTU 1450 (underlay 1500 - 50): ICMP payload 1450 - 28 = 1422
    expect((await ping('h1', 'c1', c3.ip, '-M', 'do', '-s', '1422')).code).toBe(0);
    const tooBig = await ping('h1', 'c1', c3.ip, '-M', 'do', '-s', '1423');
    expect(tooBig.code).not.toBe(0);
    expect(tooBig.stdout + tooBig.stderr).toMatch(/message too long|mtu = 1450/i);
  });

  it('keeps different overlay networks apart', async () => {
    const o3 = await run('o3', 'h3', 'other');
    await waitUntil(async () => (await lab.ctagent('h3', 'ps')).stdout.includes('o3'), 15_000);
    expect(await reachable('h1', 'c1', o3.ip)).toBe(false);
    await ok(lab.ctmgr('rm', '-f', 'o3'));
  });

  it('connects a running sandbox to a second network as eth1, and disconnects it', async () => {
    const o3 = await run('o3b', 'h3', 'other');
    const ip = (await ok(lab.ctmgr('network', 'connect', 'other', 'c1'))).trim();
    expect(ip).toMatch(/^10\.20\.0\.\d+$/);
    await waitUntil(async () => (await lab.ctagent('h1', 'exec', 'c1', '--', 'ip', '-br', 'addr', 'show', 'eth1')).stdout.includes(ip), 10_000);
    await waitUntil(() => reachable('h1', 'c1', o3.ip), 10_000, () => lab.logs(20));
    expect(await reachable('h1', 'c1', c3.ip)).toBe(true); // eth0 untouched
    await ok(lab.ctmgr('network', 'disconnect', 'other', 'c1'));
    await waitUntil(async () => (await lab.ctagent('h1', 'exec', 'c1', '--', 'ip', 'link', 'show', 'eth1')).code !== 0, 10_000);
    expect(await reachable('h1', 'c1', o3.ip)).toBe(false);
    const last = await lab.ctmgr('network', 'disconnect', 'app', 'c1');
    expect(last.code).toBe(1);
    expect(last.stderr).toMatch(/last network of container c1/);
    await ok(lab.ctmgr('rm', '-f', 'o3b'));
  });

  it('repairs an FDB entry, a neighbour entry and a whole VXLAN device deleted by hand', async () => {
    await ok(lab.exec('h1', 'bridge', 'fdb', 'del', c3.mac, 'dev', vx, 'dst', lab.hosts[2]!.addr, 'self'));
    await ok(lab.exec('h1', 'ip', 'neigh', 'del', c3.ip, 'dev', vx));
    await waitUntil(async () => (await ok(lab.exec('h1', 'bridge', 'fdb', 'show', 'dev', vx))).includes(`${c3.mac} dst`), 10_000);
    await waitUntil(async () => (await ok(lab.exec('h1', 'ip', 'neigh', 'show', 'dev', vx))).includes('PERMANENT'), 10_000);
    await ok(lab.exec('h3', 'ip', 'link', 'del', vx));
    await waitUntil(() => reachable('h1', 'c1', c3.ip), 10_000, () => lab.logs(20));
    const metrics = await ok(lab.exec('h1', 'node', '-e', 'fetch("http://127.0.0.1:4702/metrics").then(r=>r.text()).then(t=>process.stdout.write(t))'));
    expect(Number(/ctnet_agent_drift_repairs_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
  });

  it('loses no packet while the agent on either end restarts', async () => {
    const pinger = ping('h1', 'c1', c3.ip, '-i', '0.05', '-c', '120'); // ~6 s of pings
    await new Promise((r) => setTimeout(r, 500));
    await lab.stopAgent('h1');
    lab.startAgent('h1');
    await new Promise((r) => setTimeout(r, 1500));
    await lab.stopAgent('h3', 'SIGKILL');
    lab.startAgent('h3');
    const result = await pinger;
    expect(result.stdout).toMatch(/120 packets transmitted, 120 received, 0% packet loss/);
  });

  it('withdraws a removed sandbox from every other host', async () => {
    const c2 = await run('c2', 'h2');
    const fdbOnH1 = async () => ok(lab.exec('h1', 'bridge', 'fdb', 'show', 'dev', vx));
    await waitUntil(async () => (await fdbOnH1()).includes(`${c2.mac} dst`), 10_000);
    await ok(lab.ctmgr('rm', '-f', 'c2'));
    await waitUntil(async () => !(await fdbOnH1()).includes(`${c2.mac} dst`), 5000);
    await waitUntil(async () => !(await ok(lab.exec('h3', 'ip', 'neigh', 'show', 'dev', vx))).includes(c2.ip), 5000);
    await waitUntil(async () => !(await ok(lab.exec('h2', 'ip', '-br', 'link'))).includes('ctvx-'), 5000);
  });

  it('removes the endpoints of a host that goes away, everywhere, after the grace period, and frees their addresses', async () => {
    await lab.stopAgent('h3', 'SIGKILL');
    await lab.setLinkDown('h3');
    // by name: a substring test on the table also matched "c3" inside a random container ID (a flake)
    const names = async () => (JSON.parse(await ok(lab.ctmgr('ps', '--format', 'json'))) as { name: string }[]).map((c) => c.name);
    await waitUntil(async () => !(await names()).includes('c3'), 30_000, () => lab.logs(20));
    // (the bridge may still hold a learned entry for the MAC until it ages out: ours are the "dst" ones)
    await waitUntil(async () => !(await ok(lab.exec('h1', 'bridge', 'fdb', 'show', 'dev', vx))).includes(`${c3.mac} dst`), 10_000);
    expect(await ok(lab.exec('h1', 'ip', 'neigh', 'show', 'dev', vx))).not.toContain(c3.ip);
    const [app] = await json<{ ipamUsage: { allocated: number } }[]>(lab.ctmgr('network', 'inspect', 'app'));
    expect(app!.ipamUsage.allocated).toBe(1); // only c1 is left
    await lab.setLinkUp('h3');
  });
});
