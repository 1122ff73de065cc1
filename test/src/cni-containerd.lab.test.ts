import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailableReason, startLab, type Lab } from './lab/lab.js';
import { LAB_IMAGE, containerdUnavailableReason, removeMadeCniDirs, startContainerd, type LabContainerd } from './lab/containerd.js';
import { REPO, ok, waitUntil } from './harness.js';

// A real runtime: Debian's containerd in two lab hosts, `ctr run --cni` with the ctnet conflist.
const reason = labUnavailableReason() ?? containerdUnavailableReason();
const PLUGIN = join(REPO, 'packages/cni/dist/ctnet');
let lab: Lab;
const engines = new Map<string, LabContainerd>();
let resolv = '';

const engine = (host: string) => engines.get(host)!;
const usage = async () => (JSON.parse(await ok(lab.ctmgr('network', 'inspect', 'pods'))) as { endpoints?: unknown[] }[])[0]!.endpoints?.length ?? 0;
let execs = 0;
const inside = (host: string, id: string, ...cmd: string[]) => engine(host).ctr('task', 'exec', '--exec-id', `t${++execs}`, id, ...cmd);
const addressIn = async (host: string, id: string) => {
  const out = await ok(inside(host, id, 'ip', '-4', '-o', 'addr', 'show', 'eth0'));
  return /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out)![1]!;
};
/** `ctr run --cni` in the background as a runtime client would: resolv.conf names the result's nameserver. */
const runArgs = (id: string) => ['run', '--rm', '--cni', '--mount', `type=bind,src=${resolv},dst=/etc/resolv.conf,options=rbind:ro`, LAB_IMAGE, id, 'sleep', '600'];

describe.skipIf(reason !== undefined)(`CNI with containerd${reason ? ` (skipped: ${reason})` : ''}`, () => {
  beforeAll(async () => {
    lab = await startLab({ hosts: 2, agents: true, resyncSeconds: 2 });
    await waitUntil(async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length === 2, 30_000, () => lab.logs(20));
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.42.0.0/24', 'pods'));
    resolv = join(lab.workDir, 'resolv.conf');
    writeFileSync(resolv, 'nameserver 10.42.0.1\noptions ndots:0\n');
    for (const host of ['h1', 'h2']) {
      const conflist = {
        cniVersion: '1.0.0',
        name: 'pods',
        plugins: [{ type: 'ctnet', agentSocket: join(lab.workDir, host, 'cni.sock'), waitConverged: true }],
      };
      engines.set(host, await startContainerd(lab, host, { conflist, plugins: { ctnet: PLUGIN, loopback: '/usr/lib/cni/loopback' } }));
    }
  }, 120_000);
  afterAll(async () => {
    for (const e of engines.values()) await e.stop().catch(() => undefined);
    removeMadeCniDirs();
    await lab?.destroy();
  }, 120_000);

  it('containers on two hosts get cluster addresses and reach each other by address and by name', async () => {
    const before = await usage();
    const c1 = engine('h1').spawnCtr('ctr run c1', ...runArgs('c1'));
    const c2 = engine('h2').spawnCtr('ctr run c2', ...runArgs('c2'));
    await waitUntil(async () => (await engine('h1').ctr('task', 'ls')).stdout.includes('RUNNING') && (await engine('h2').ctr('task', 'ls')).stdout.includes('RUNNING'), 30_000, () => lab.logs(20));
    expect(await usage()).toBe(before + 2);
    const ip1 = await addressIn('h1', 'c1');
    const ip2 = await addressIn('h2', 'c2');
    expect(ip1).toMatch(/^10\.42\.0\./);
    expect(ip2).toMatch(/^10\.42\.0\./);
    // waitConverged in the conflist: once ctr's ADD returned, the peer is reachable at once.
    await ok(inside('h1', 'c1', 'ping', '-c1', '-W2', ip2));
    await ok(inside('h2', 'c2', 'ping', '-c1', '-W2', ip1));
    // By name: ctr's container id is "<namespace>-<id>", registered in DNS as it is.
    const name2 = `${engine('h2').namespace}-c2`.toLowerCase();
    const byName = await ok(inside('h1', 'c1', 'ping', '-c1', '-W2', name2));
    expect(byName).toContain(ip2);

    // ctr task kill: the foreground ctr sees the task end, calls DEL, and --rm removes the container.
    await ok(engine('h2').ctr('task', 'kill', '-s', 'KILL', 'c2'));
    await c2.exited;
    await waitUntil(async () => (await usage()) === before + 1, 15_000, () => lab.logs(10));
    expect((await engine('h2').ctr('container', 'ls', '-q')).stdout).not.toContain('c2');
    expect(await ok(lab.exec('h2', 'ip', '-br', 'link'))).not.toMatch(/ctv-/);
    // Its name is gone from every host before the address could be reused.
    expect((await inside('h1', 'c1', 'nslookup', name2, '10.42.0.1')).stdout).not.toContain(ip2);
    await ok(engine('h1').ctr('task', 'kill', '-s', 'KILL', 'c1'));
    await c1.exited;
    await waitUntil(async () => (await usage()) === before, 15_000, () => lab.logs(10));
  });
});
