import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailableReason, startLab, type Lab } from './lab/lab.js';
import { waitUntil, ok } from './harness.js';

// Network modes (none, host, container:NAME), attaching an existing process, bad input.
const reason = labUnavailableReason();
let lab: Lab;
let orphan: ChildProcess | undefined;

const running = (host: string, name: string) => async () => (await lab.ctagent(host, 'ps')).stdout.split('\n').some((l) => l.startsWith(`${name} `) && /running|attached/.test(l));

describe.skipIf(reason !== undefined)(`sandbox modes${reason ? ` (skipped: ${reason})` : ''}`, () => {
  beforeAll(async () => {
    lab = await startLab({ hosts: 2, agents: true, resyncSeconds: 2 });
    await waitUntil(async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length === 2, 30_000, () => lab.logs(20));
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.30.0.0/24', 'app'));
    await ok(lab.ctmgr('run', '-d', '--name', 'c1', '--network', 'app', '--node', 'h1', '--', 'sleep', 'infinity'));
    await waitUntil(running('h1', 'c1'), 15_000, () => lab.logs(20));
  }, 90_000);
  afterAll(async () => {
    orphan?.kill('SIGKILL');
    await lab?.destroy();
  });

  it('says so when the VXLAN port is taken on a host, and recovers once it is free', async () => {
    const h2 = lab.hosts[1]!;
    // h2 has no overlay device yet (this test runs first): hold UDP 4789 there
    const squatter = spawn('ip', ['netns', 'exec', h2.ns, 'python3', '-c', 'import socket,time;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("0.0.0.0",4789));time.sleep(120)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 500));
      await ok(lab.ctmgr('network', 'create', '--subnet', '10.31.0.0/24', 'blocked'));
      await ok(lab.ctmgr('run', '-d', '--name', 'b2', '--network', 'blocked', '--node', 'h2', '--', 'sleep', 'infinity'));
      const health = () => lab.exec('h2', 'node', '-e', 'fetch("http://127.0.0.1:4702/healthz").then(async r=>{process.stdout.write(r.status+" "+await r.text())})');
      await waitUntil(async () => (await health()).stdout.includes('VXLAN port 4789 is already in use'), 15_000, () => lab.agentLog('h2'));
      expect((await health()).stdout).toMatch(/^503 /);
    } finally {
      squatter.kill('SIGKILL');
    }
    await ok(lab.ctmgr('run', '-d', '--name', 'b1', '--network', 'blocked', '--node', 'h1', '--', 'sleep', 'infinity'));
    const b2ip = (JSON.parse(await ok(lab.ctmgr('inspect', 'b2'))) as { endpoints: { ip: string }[] }[])[0]!.endpoints[0]!.ip;
    await waitUntil(async () => (await lab.ctagent('h1', 'exec', 'b1', '--', 'ping', '-c1', '-W1', b2ip)).code === 0, 20_000, () => lab.agentLog('h2'));
  });

  it('passes env and hostname to the command, and ctmgr logs fetches its output from its node', async () => {
    await ok(lab.ctmgr('run', '-d', '--name', 'talk', '--network', 'app', '--node', 'h2', '--hostname', 'chatty', '-e', 'GREETING=hi there',
      '--', 'sh', '-c', 'echo "$GREETING from $(hostname)"; echo second; sleep infinity'));
    await waitUntil(async () => (await lab.ctmgr('logs', 'talk')).stdout.includes('second'), 15_000, () => lab.logs(20));
    expect((await ok(lab.ctmgr('logs', 'talk'))).split('\n')[0]).toBe('hi there from chatty');
    expect(await ok(lab.ctmgr('logs', '--tail', '1', 'talk'))).toBe('second\n');
    const none = await lab.ctmgr('logs', 'nobody');
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no container named nobody/);
  });

  it('regression: a new container under an old name shows only its own output (logs are kept by id and removed with the container)', async () => {
    await ok(lab.ctmgr('run', '-d', '--name', 'reused', '--network', 'app', '--node', 'h2', '--', 'sh', '-c', 'echo old-output; sleep infinity'));
    await waitUntil(async () => (await lab.ctmgr('logs', 'reused')).stdout.includes('old-output'), 15_000, () => lab.logs(20));
    await ok(lab.ctmgr('rm', '-f', 'reused'));
    const logsDir = join(lab.workDir, 'h2', 'logs');
    const oldOutputKept = () => readdirSync(logsDir).some((f) => readFileSync(join(logsDir, f), 'utf8').includes('old-output'));
    await waitUntil(() => !oldOutputKept(), 15_000);
    await ok(lab.ctmgr('run', '-d', '--name', 'reused', '--network', 'app', '--node', 'h2', '--', 'sh', '-c', 'echo new-output; sleep infinity'));
    await waitUntil(async () => (await lab.ctmgr('logs', 'reused')).stdout.includes('new-output'), 15_000, () => lab.logs(20));
    expect((await ok(lab.ctmgr('logs', 'reused')))).toBe('new-output\n');
    await ok(lab.ctmgr('rm', '-f', 'reused'));
  });

  it('--network none gives a sandbox with only lo', async () => {
    await ok(lab.ctmgr('run', '-d', '--name', 'n1', '--network', 'none', '--node', 'h1', '--', 'sleep', 'infinity'));
    await waitUntil(running('h1', 'n1'), 10_000);
    const links = await ok(lab.ctagent('h1', 'exec', 'n1', '--', 'ip', '-br', 'link'));
    expect(links.trim().split('\n').map((l) => l.split(/\s+/)[0])).toEqual(['lo']);
  });

  it('--network host runs in the host namespace', async () => {
    await ok(lab.ctmgr('run', '-d', '--name', 'hh', '--network', 'host', '--node', 'h2', '--', 'sleep', 'infinity'));
    await waitUntil(running('h2', 'hh'), 10_000);
    expect(await ok(lab.ctagent('h2', 'exec', 'hh', '--', 'ip', '-br', 'addr'))).toContain(lab.hosts[1]!.addr);
  });

  it('--network container:NAME shares that sandbox, on its node', async () => {
    await ok(lab.ctmgr('run', '-d', '--name', 'side', '--network', 'container:c1', '--', 'sleep', 'infinity'));
    const [side] = JSON.parse(await ok(lab.ctmgr('inspect', 'side'))) as { node: string }[];
    expect(side!.node).toBe('h1');
    await waitUntil(running('h1', 'side'), 10_000);
    const c1ip = (JSON.parse(await ok(lab.ctmgr('inspect', 'c1'))) as { endpoints: { ip: string }[] }[])[0]!.endpoints[0]!.ip;
    expect(await ok(lab.ctagent('h1', 'exec', 'side', '--', 'ip', '-br', 'addr', 'show', 'eth0'))).toContain(c1ip);
    const missing = await lab.ctmgr('run', '-d', '--name', 'x', '--network', 'container:nope', '--', 'sleep', '1');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/container nope not found/);
    // removing the sharer leaves the owner's sandbox alone
    await ok(lab.ctmgr('rm', '-f', 'side'));
    await waitUntil(async () => !(await running('h1', 'side')()), 10_000);
    expect(await ok(lab.ctagent('h1', 'exec', 'c1', '--', 'ip', '-br', 'addr', 'show', 'eth0'))).toContain(c1ip);
  });

  it('attaches a running process (pipework-style) and detaches it, leaving the process running', async () => {
    const h2 = lab.hosts[1]!;
    orphan = spawn('ip', ['netns', 'exec', h2.ns, 'unshare', '--net', '--', 'sleep', '300'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
    const pid = String(orphan.pid);
    const ip = (await ok(lab.ctagent('h2', 'attach', '--pid', pid, '--network', 'app', '--name', 'att'))).trim();
    expect(ip).toMatch(/^10\.30\.0\.\d+$/);
    await waitUntil(async () => (await lab.ctagent('h1', 'exec', 'c1', '--', 'ping', '-c1', '-W1', ip)).code === 0, 15_000, () => lab.logs(20));
    await ok(lab.ctagent('h2', 'detach', '--name', 'att'));
    await waitUntil(async () => (await lab.ctagent('h1', 'exec', 'c1', '--', 'ping', '-c1', '-W1', ip)).code !== 0, 10_000);
    expect(orphan.exitCode).toBeNull(); // still running
    const bad = await lab.ctagent('h2', 'attach', '--pid', '999999', '--network', 'app', '--name', 'ghost');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/no process with PID 999999/);
  });

  it('refuses to start an agent whose advertise address is not on the host', async () => {
    const r = await lab.ctagent('h1', 'run', '--manager', lab.managerAddr, '--advertise-addr', '10.99.99.99', '--node-name', 'bogus', '--http', '127.0.0.1:4799');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/advertise address 10\.99\.99\.99 is not on this host; use one of: 192\.168\./);
  });
});
