import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type ActualHost, type KernelOp } from '@ctnet/core';
import { applyOps, readActual } from './kernel.js';
import { createExecaRunner, type CommandRunner } from './runner.js';

/**
 * Against the real kernel, inside a namespace this file creates and always deletes. Every
 * ip/bridge command here names that namespace (`-n`); nothing touches the root namespace's
 * interfaces, routes or firewall. Needs root and iproute2; skipped otherwise.
 */
function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (creates a network namespace)';
  const ip = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (ip.error || ip.status !== 0) return 'needs iproute2 (`ip` not found)';
  const bridge = spawnSync('bridge', ['-V'], { encoding: 'utf8' });
  if (bridge.error || bridge.status !== 0) return 'needs iproute2 (`bridge` not found)';
  return undefined;
}
const reason = skipReason();

const runner = createExecaRunner();
const NS = `ctnet-t-${randomBytes(4).toString('hex')}`;
const created = new Set<string>(); // namespaces this file made, and only those get deleted

async function ns(name: string, ...args: string[]): Promise<void> {
  const r = await runner.run('ip', ['-n', name, ...args]);
  if (r.exitCode !== 0) throw new Error(`ip -n ${name} ${args.join(' ')}: ${r.stderr}`);
}

async function addNetns(name: string): Promise<void> {
  const r = await runner.run('ip', ['netns', 'add', name]);
  if (r.exitCode !== 0) throw new Error(`ip netns add ${name}: ${r.stderr}`);
  created.add(name);
}

async function delNetns(name: string): Promise<void> {
  if (!created.has(name)) return;
  await runner.run('ip', ['netns', 'del', name]);
  created.delete(name);
}

const BR = 'ctbr-t';
const VX = 'ctvx-t';
const LOCAL = '192.0.2.1'; // on a veth inside the namespace: this kernel has no dummy devices
const hex = (n: number): string => n.toString(16).padStart(2, '0');
const macOf = (i: number): string => `02:42:${hex((i >> 16) & 255)}:${hex((i >> 8) & 255)}:${hex(i & 255)}:01`;
const ipOf = (base: string, i: number): string => `${base}.${(i >> 8) & 255}.${i & 255}`;
const vtepOf = (i: number): string => `192.0.2.${2 + (i % 50)}`;

function entries(dev: string, n: number, ipBase: string): { fdb: KernelOp[]; neigh: KernelOp[] } {
  const fdb: KernelOp[] = [];
  const neigh: KernelOp[] = [];
  for (let i = 1; i <= n; i++) {
    fdb.push({ op: 'fdb-replace', dev, mac: macOf(i), dst: vtepOf(i) });
    neigh.push({ op: 'neigh-replace', dev, ip: ipOf(ipBase, i), mac: macOf(i) });
  }
  return { fdb, neigh };
}

const link = (actual: ActualHost, name: string) => actual.links.find((l) => l.name === name);

describe.skipIf(reason !== undefined)(`netlink against the kernel${reason ? ` (skipped: ${reason})` : ''}`, () => {
  beforeAll(async () => {
    await addNetns(NS);
    await ns(NS, 'link', 'set', 'lo', 'up');
    await ns(NS, 'link', 'add', 'ctve-a', 'type', 'veth', 'peer', 'name', 'ctve-b');
    await ns(NS, 'link', 'set', 'ctve-a', 'up');
    await ns(NS, 'link', 'set', 'ctve-b', 'up');
    await ns(NS, 'addr', 'add', `${LOCAL}/24`, 'dev', 'ctve-a');
  });

  afterAll(async () => {
    for (const name of [...created]) await delNetns(name);
  });

  const { fdb, neigh } = entries(VX, 100, '10.10');

  it('creates a bridge and a VXLAN device, enslaves it, adds an address and 100 FDB + 100 neighbour entries', async () => {
    const ops: KernelOp[] = [
      { op: 'bridge-add', name: BR, mtu: 1450 },
      { op: 'link-set', name: BR, up: true },
      { op: 'vxlan-add', name: VX, vni: 4242, port: 4789, local: LOCAL, mtu: 1450 },
      { op: 'link-set', name: VX, master: BR, up: true },
      { op: 'addr-add', dev: BR, cidr: '10.10.0.1/24' },
      ...fdb, // given before the neighbours on purpose: applyOps still runs ip (the device) first
      ...neigh,
    ];
    expect(await applyOps(runner, ops, { netns: NS })).toEqual({ applied: ops.length, failed: [] });

    const actual = await readActual(runner, { netns: NS });
    expect(link(actual, BR)).toMatchObject({ kind: 'bridge', mtu: 1450, up: true });
    expect(link(actual, VX)).toMatchObject({
      kind: 'vxlan',
      mtu: 1450,
      master: BR,
      up: true,
      vxlan: { vni: 4242, port: 4789, local: LOCAL, learning: false, proxy: true },
    });
    expect(actual.addrs).toContainEqual({ dev: BR, cidr: '10.10.0.1/24' });
    const haveFdb = actual.fdb.filter((e) => e.dev === VX);
    for (const op of fdb) {
      if (op.op !== 'fdb-replace') continue;
      expect(haveFdb).toContainEqual({ dev: VX, mac: op.mac, dst: op.dst, permanent: true });
    }
    expect(haveFdb).toHaveLength(100); // the bridge's own entry for the port is not ours
    const haveNeigh = actual.neigh.filter((n) => n.dev === VX);
    for (const op of neigh) {
      if (op.op !== 'neigh-replace') continue;
      expect(haveNeigh).toContainEqual({ dev: VX, ip: op.ip, mac: op.mac, permanent: true });
    }
    expect(haveNeigh).toHaveLength(100);
  });

  it('turns learning off on a live VXLAN device (vxlanFlags)', async () => {
    await ns(NS, 'link', 'add', 'ctvx-l', 'type', 'vxlan', 'id', '4243', 'dstport', '4789', 'local', LOCAL, 'learning');
    const result = await applyOps(runner, [{ op: 'link-set', name: 'ctvx-l', vxlanFlags: true }], { netns: NS });
    expect(result).toEqual({ applied: 1, failed: [] });
    const actual = await readActual(runner, { netns: NS });
    expect(link(actual, 'ctvx-l')?.vxlan).toMatchObject({ learning: false, proxy: false }); // proxy cannot be changed live
  });

  it('reports failing ops with the kernel message while the others apply, even where ip itself exits', async () => {
    const ops: KernelOp[] = [
      { op: 'fdb-replace', dev: 'nope0', mac: '02:42:0b:00:00:01', dst: '192.0.2.9' },
      { op: 'fdb-replace', dev: VX, mac: '02:42:0b:00:00:02', dst: '192.0.2.9' },
      { op: 'neigh-replace', dev: 'nope0', ip: '10.11.0.1', mac: '02:42:0b:00:00:01' },
      { op: 'link-set', name: 'ctvx-l', master: 'nope-br' }, // iproute2 exit(255)s the batch here
      { op: 'neigh-replace', dev: VX, ip: '10.11.0.2', mac: '02:42:0b:00:00:02' },
      { op: 'bridge-add', name: BR, mtu: 1450 }, // exists
    ];
    const result = await applyOps(runner, ops, { netns: NS });
    expect(result.failed.map((f) => [f.op, f.code])).toEqual([
      [ops[0], ErrorCode.NotFound],
      [ops[2], ErrorCode.NotFound],
      [ops[3], ErrorCode.NotFound],
      [ops[5], ErrorCode.AlreadyExists],
    ]);
    expect(result.failed.map((f) => f.error)).toEqual([
      'Cannot find device "nope0"',
      'Cannot find device "nope0"',
      expect.stringMatching(/Device does not exist \(ip exited with status 255 on this op\)/),
      'File exists',
    ]);
    expect(result.applied).toBe(2);
    const actual = await readActual(runner, { netns: NS });
    expect(actual.fdb).toContainEqual({ dev: VX, mac: '02:42:0b:00:00:02', dst: '192.0.2.9', permanent: true });
    expect(actual.neigh).toContainEqual({ dev: VX, ip: '10.11.0.2', mac: '02:42:0b:00:00:02', permanent: true });
  });

  it('deletes everything again, and deleting what is gone is not a failure', async () => {
    const deletes: KernelOp[] = [
      ...fdb.map((op): KernelOp => (op.op === 'fdb-replace' ? { op: 'fdb-del', dev: VX, mac: op.mac, dst: op.dst } : op)),
      ...neigh.map((op): KernelOp => (op.op === 'neigh-replace' ? { op: 'neigh-del', dev: VX, ip: op.ip } : op)),
      { op: 'addr-del', dev: BR, cidr: '10.10.0.1/24' },
    ];
    expect(await applyOps(runner, deletes, { netns: NS })).toEqual({ applied: deletes.length, failed: [] });
    let actual = await readActual(runner, { netns: NS });
    expect(actual.fdb.filter((e) => e.dev === VX && e.mac.startsWith('02:42:00'))).toEqual([]);
    expect(actual.neigh.filter((n) => n.dev === VX && n.ip.startsWith('10.10.'))).toEqual([]);
    expect(actual.addrs.filter((a) => a.dev === BR)).toEqual([]);

    // Again: nothing there any more. `neigh del` of a missing entry would end ip's batch.
    expect(await applyOps(runner, deletes, { netns: NS })).toEqual({ applied: deletes.length, failed: [] });

    const links: KernelOp[] = [
      { op: 'link-del', name: VX },
      { op: 'link-del', name: 'ctvx-l' },
      { op: 'link-del', name: BR },
    ];
    expect(await applyOps(runner, links, { netns: NS })).toEqual({ applied: 3, failed: [] });
    actual = await readActual(runner, { netns: NS });
    expect(actual.links.map((l) => l.name).sort()).toEqual(['ctve-a', 'ctve-b', 'lo']);
    expect(await applyOps(runner, links, { netns: NS })).toEqual({ applied: 3, failed: [] });
  });

  it('says when the namespace does not exist', async () => {
    const gone = `${NS}-g`;
    await addNetns(gone);
    await delNetns(gone);
    await expect(readActual(runner, { netns: gone })).rejects.toMatchObject({ code: ErrorCode.NotFound });
    await expect(applyOps(runner, [{ op: 'link-del', name: VX }], { netns: gone })).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });

  it('measures 10,000 FDB + 10,000 neighbour entries in one apply', async () => {
    const dev = 'ctvx-p';
    await applyOps(runner, [{ op: 'vxlan-add', name: dev, vni: 4244, port: 4789, local: LOCAL, mtu: 1450 }, { op: 'link-set', name: dev, up: true }], { netns: NS });
    const big = entries(dev, 10_000, '10.20');
    const ops = [...big.fdb, ...big.neigh];
    // Time each batch process too, to see how the total splits between ip, bridge and our side.
    const perTool: string[] = [];
    const timed: CommandRunner = {
      async run(cmd, args, opts) {
        const t = performance.now();
        const r = await runner.run(cmd, args, opts);
        perTool.push(`${cmd} ${((performance.now() - t) / 1000).toFixed(3)} s`);
        return r;
      },
    };
    const start = performance.now();
    const result = await applyOps(timed, ops, { netns: NS });
    const applySeconds = (performance.now() - start) / 1000;
    expect(result).toEqual({ applied: ops.length, failed: [] });

    const readStart = performance.now();
    const actual = await readActual(runner, { netns: NS });
    const readSeconds = (performance.now() - readStart) / 1000;
    expect(actual.fdb.filter((e) => e.dev === dev)).toHaveLength(10_000);
    expect(actual.neigh.filter((n) => n.dev === dev)).toHaveLength(10_000);

    console.log(
      `netlink lab: applied ${ops.length} entries (10,000 fdb + 10,000 neigh) in ${applySeconds.toFixed(3)} s = ` +
        `${Math.round(ops.length / applySeconds)} entries/s (${perTool.join(', ')}); readActual of them in ${readSeconds.toFixed(3)} s`,
    );
  });
}, 60_000);
