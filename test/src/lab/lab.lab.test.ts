import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../harness.js';
import { LabStartError, REPO, labUnavailableReason, startLab, type Lab } from './lab.js';
import { isAlive, ownedNamespaces } from './sweep.mjs';

// The lab's own end-to-end test: namespaces, the underlay, the manager in its namespace, and
// that nothing is left behind however the run ends. Needs root and iproute2.
const unavailable = labUnavailableReason();
if (unavailable) console.warn(`lab tests skipped: ${unavailable}`);
const describeLab = describe.skipIf(unavailable !== undefined);

const FAKE_AGENT = join(import.meta.dirname, 'fixtures', 'fake-agent.mjs');
const HOLD_LAB = join(import.meta.dirname, 'fixtures', 'hold-lab.ts');

const ping = (lab: Lab, from: string, addr: string) => lab.exec(from, 'ping', '-c1', '-W1', addr);

/** Everything a lab may leave behind: namespaces, processes, its work dir. */
function leftovers(prefix: string, pids: readonly number[], workDir?: string): string[] {
  return [
    ...ownedNamespaces(prefix).map((ns) => `namespace ${ns}`),
    ...pids.filter(isAlive).map((pid) => `pid ${pid}`),
    ...(workDir && existsSync(workDir) ? [`dir ${workDir}`] : []),
  ];
}

describeLab(`lab${unavailable ? ` (skipped: ${unavailable})` : ''}: three hosts and a manager, no agents`, () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ hosts: 3, agents: false });
  });
  afterAll(() => lab?.destroy());

  it('names everything after one prefix and gives every host an underlay address', () => {
    expect(lab.prefix).toMatch(/^ct[0-9a-f]{6}$/);
    expect(lab.hosts.map((h) => h.name)).toEqual(['h1', 'h2', 'h3']);
    expect(lab.namespaces().sort()).toEqual([lab.underlayNs, lab.manager.ns, ...lab.hosts.map((h) => h.ns)].sort());
    expect(lab.managerAddr).toBe(`${lab.manager.addr}:4700`);
    expect(lab.subnet).toMatch(/^192\.168\.(2[0-4]\d|250)\.0\/24$/);
  });

  it('lets every host reach every other host and the manager over the underlay', async () => {
    for (const from of lab.hosts) {
      for (const to of [...lab.hosts.filter((h) => h !== from), lab.manager]) {
        const r = await ping(lab, from.name, to.addr);
        expect(r.code, `${from.name} -> ${to.name} (${to.addr}): ${r.stdout}${r.stderr}`).toBe(0);
      }
    }
  });

  it('gives no namespace a default route (the lab cannot reach the outside)', async () => {
    for (const ns of lab.namespaces()) {
      for (const family of ['-4', '-6']) {
        const r = await lab.execIn(ns, 'ip', family, '-j', 'route', 'show', 'default');
        expect(r.code, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout || '[]'), `${ns} ${family}`).toEqual([]);
      }
    }
    const outside = await ping(lab, 'h1', '192.0.2.1'); // TEST-NET-1: "Network is unreachable"
    expect(outside.code).not.toBe(0);
  });

  it('shows each host its own devices in /sys, as on a real host', async () => {
    for (const node of [...lab.hosts, lab.manager]) {
      const r = await lab.exec(node, 'ls', '/sys/class/net');
      expect(r.stdout.split(/\s+/).filter(Boolean).sort(), node.name).toEqual(['eth0', 'lo']);
    }
  });

  it('runs ctmgr against the manager inside its namespace', async () => {
    const ls = await lab.ctmgr('network', 'ls');
    expect(ls, lab.managerLog()).toMatchObject({ code: 0, stdout: expect.stringMatching(/^NETWORK ID\s+NAME/) });
    const create = await lab.ctmgr('network', 'create', '-d', 'overlay', '--subnet', '10.10.0.0/24', 'labnet');
    expect(create.code, create.stderr).toBe(0);
    expect((await lab.ctmgr('network', 'ls')).stdout).toContain('labnet');
  });

  it('cuts a host off with setLinkDown and restores it with setLinkUp', async () => {
    const [h1, h2, h3] = lab.hosts as [Lab['hosts'][0], Lab['hosts'][0], Lab['hosts'][0]];
    await lab.setLinkDown('h3');
    expect((await ping(lab, 'h1', h3.addr)).code).not.toBe(0);
    expect((await ping(lab, 'h3', lab.manager.addr)).code).not.toBe(0);
    expect((await ping(lab, 'h1', h2.addr)).code).toBe(0);
    await lab.setLinkUp(h3);
    await waitUntil(async () => (await ping(lab, h1.name, h3.addr)).code === 0, 10_000, () => 'h1 -> h3 after setLinkUp');
    expect((await ping(lab, 'h3', lab.manager.addr)).code).toBe(0);
  });

  it('deletes namespaces agents create under the sandbox prefix, and runs commands in them', async () => {
    const sandbox = `${lab.hosts[0]!.sandboxPrefix}x1`;
    // What an agent does from its host namespace: a sandbox, cabled to the host with a veth.
    for (const cmd of [
      ['ip', 'netns', 'add', sandbox],
      ['ip', 'link', 'add', 'name', 'vx1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', sandbox],
    ]) {
      const r = await lab.exec('h1', ...cmd);
      expect(r.code, r.stderr).toBe(0);
    }
    expect(lab.namespaces()).toContain(sandbox);
    expect((await lab.execIn(sandbox, 'ip', 'link', 'set', 'dev', 'eth0', 'up')).code).toBe(0);
    // A command on a host sees what that host's agent sees.
    const env = await lab.exec('h1', 'sh', '-c', 'echo "$CTNET_NETNS_PREFIX $CTNET_DATA_DIR"');
    expect(env.stdout.trim()).toBe(`${lab.hosts[0]!.sandboxPrefix} ${join(lab.workDir, 'h1')}`);
    await expect(lab.execIn('not-ours', 'true')).rejects.toThrow(/not part of lab/);
    await expect(lab.exec('h9', 'true')).rejects.toThrow(/no node "h9"/);
  });

  it('destroys everything it created, and destroy is idempotent', async () => {
    const { prefix, workDir } = lab;
    const pids = lab.pids();
    expect(pids.length).toBeGreaterThanOrEqual(2); // the manager and the watchdog
    await lab.destroy();
    await lab.destroy();
    expect(leftovers(prefix, pids, workDir)).toEqual([]);
  });
});

describeLab('lab: agents (a stand-in agent with the real flags)', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await startLab({ hosts: 2, agents: true, agentJs: FAKE_AGENT, resyncSeconds: 2, agentArgs: ['--http', '127.0.0.1:4712'] });
  });
  afterAll(() => lab?.destroy());

  const holderPid = (log: string): number => Number(/holder pid (\d+)/.exec(log)?.[1] ?? 0);

  it('starts one agent per host with the lab flags, CTNET_NETNS_PREFIX, and the manager reachable', async () => {
    for (const h of lab.hosts) {
      await waitUntil(() => lab.agentLog(h).includes('holder pid'), 15_000, () => `${h.name} agent log:\n${lab.agentLog(h)}`);
      const log = lab.agentLog(h);
      expect(log).toContain(`manager reachable at ${lab.managerAddr}`);
      expect(h.sandboxPrefix).toMatch(new RegExp(`^${lab.sandboxPrefix}\\d+-$`));
      expect(log).toContain(`CTNET_NETNS_PREFIX=${h.sandboxPrefix}`);
      const argv = JSON.parse(/argv (\{.*\}) CTNET/.exec(log)![1]!);
      expect(argv).toMatchObject({
        positionals: ['run'],
        manager: lab.managerAddr,
        'advertise-addr': h.addr,
        'node-name': h.name,
        'data-dir': join(lab.workDir, h.name),
        http: '127.0.0.1:4712', // agentArgs come last and win
        'resync-interval': '2s',
      });
      expect(lab.namespaces()).toContain(`${h.sandboxPrefix}fake`);
    }
  });

  it('stops and restarts an agent', async () => {
    const first = lab.agentProcess('h1')!;
    expect(await lab.stopAgent('h1', 'SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    expect(isAlive(first.pid)).toBe(false);
    expect(() => lab.startAgent('m')).toThrow(/runs no agent/);
    lab.startAgent('h1');
    expect(lab.agentProcess('h1')!.pid).not.toBe(first.pid);
    await waitUntil(() => lab.agentLog('h1').split('holder pid').length === 3, 15_000, () => lab.agentLog('h1'));
    expect(await lab.stopAgent('h1')).toEqual({ code: 0, signal: null });
  });

  it('kills what agents left running in their sandboxes and deletes the sandboxes', async () => {
    const { prefix, workDir } = lab;
    const holders = lab.hosts.map((h) => holderPid(lab.agentLog(h)));
    expect(holders.every(isAlive)).toBe(true);
    const pids = lab.pids();
    await lab.destroy();
    expect(leftovers(prefix, [...pids, ...holders], workDir)).toEqual([]);
  });
});

describeLab('lab: cleanup when things go wrong', () => {
  it('removes a half-built lab when startLab fails (the manager rejects a flag)', async () => {
    const err = await startLab({ hosts: 2, managerArgs: ['--no-such-flag'] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(LabStartError);
    const e = err as LabStartError;
    expect(e.message).toMatch(/ctmgr serve exited \(exit code 2\) before answering \/healthz/);
    expect(e.message).toContain('--no-such-flag');
    expect(e.cleanup).toEqual([]);
    expect(leftovers(e.prefix, e.pids)).toEqual([]);
  });

  it('refuses to start with a prefix whose namespaces already exist', async () => {
    const lab = await startLab({ hosts: 1 });
    try {
      await expect(startLab({ hosts: 1, prefix: lab.prefix })).rejects.toThrow(/already exist/);
      expect(lab.namespaces()).toHaveLength(3);
    } finally {
      await lab.destroy();
    }
  });

  // A test process that dies with its lab up: by SIGINT the exit hooks clean up before it
  // exits; by SIGKILL nothing in it runs, and the detached watchdog does it.
  for (const signal of ['SIGINT', 'SIGKILL'] as const) {
    it(`removes the lab of a process killed with ${signal}`, async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', HOLD_LAB], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, sig) => r(sig)));
      try {
        await waitUntil(() => out.includes('\n'), 60_000, () => `hold-lab to start a lab:\n${out}${err}`);
        const held = JSON.parse(out.split('\n')[0]!) as { prefix: string; pids: number[]; workDir: string };
        expect(ownedNamespaces(held.prefix)).toHaveLength(3);
        child.kill(signal);
        expect(await exited).toBe(signal);
        if (signal === 'SIGINT') expect(ownedNamespaces(held.prefix), 'the exit hooks ran before exit').toEqual([]);
        await waitUntil(() => leftovers(held.prefix, held.pids, held.workDir).length === 0, 15_000, () =>
          leftovers(held.prefix, held.pids, held.workDir).join(', '),
        );
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    });
  }
});
