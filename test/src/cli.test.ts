import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { startTestEtcd, type TestEtcd } from '@ctnet/store';
import { CTMGR, connectAgent, startManagerProcess, type AgentConn, type ManagerProcess } from './harness.js';

// The ctmgr binary, as a user runs it, against a real manager.
let etcd: TestEtcd;
let mgr: ManagerProcess;
let agent: AgentConn;

const ctmgr = (...args: string[]) =>
  new Promise<{ code: number; out: string; err: string }>((resolve) =>
    execFile(process.execPath, [CTMGR, ...args], { env: { ...process.env, CTNET_MANAGER: mgr.addr, CTNET_TLS_DIR: mgr.adminDir } }, (error, out, err) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err }),
    ),
  );

beforeAll(async () => {
  etcd = await startTestEtcd();
  mgr = await startManagerProcess({ etcd: etcd.endpoint });
  agent = connectAgent(mgr, { name: 'h1', addr: '192.168.90.1' });
});
afterAll(async () => {
  agent?.close();
  await mgr?.stop();
  await etcd?.stop();
});

describe('ctmgr CLI', () => {
  it('creates, lists, inspects and removes a network like docker network', async () => {
    const created = await ctmgr('network', 'create', '-d', 'overlay', '--subnet', '10.10.0.0/24', '--label', 'env=test', 'app');
    expect(created).toMatchObject({ code: 0, err: '' });
    const id = created.out.trim();
    expect(id).toMatch(/^[0-9a-f]{32}$/);

    const ls = await ctmgr('network', 'ls');
    const lines = ls.out.trim().split('\n');
    expect(lines[0]).toMatch(/^NETWORK ID\s+NAME\s+DRIVER\s+SUBNET\s+VNI\s+ENDPOINTS$/);
    expect(lines[1]).toMatch(new RegExp(`^${id.slice(0, 12)}\\s+app\\s+overlay\\s+10\\.10\\.0\\.0/24\\s+4096\\s+0$`));
    // columns line up: every row starts its NAME column where the header does
    expect(lines[1]!.indexOf('app')).toBe(lines[0]!.indexOf('NAME'));

    const ep = await ctmgr('endpoint', 'create', '--network', 'app', '--node', 'h1', 'web1');
    expect(ep.code).toBe(0);
    const inspect = JSON.parse((await ctmgr('network', 'inspect', 'app')).out);
    expect(inspect[0]).toMatchObject({
      name: 'app', driver: 'overlay', vni: 4096, subnet: '10.10.0.0/24', gateway: '10.10.0.1',
      labels: { env: 'test' }, ipamUsage: { total: 253, allocated: 1, free: 252 },
    });
    expect(inspect[0].endpoints).toEqual([expect.objectContaining({ name: 'web1', ip: '10.10.0.2', node: 'h1' })]);

    const refused = await ctmgr('network', 'rm', 'app');
    expect(refused.code).toBe(1);
    expect(refused.err.trim().split('\n')).toHaveLength(1);
    expect(refused.err).toMatch(/^ctmgr: network app still has 1 endpoint\(s\): web1 \(node h1\); remove them first/);

    expect((await ctmgr('endpoint', 'rm', '--network', 'app', 'web1')).code).toBe(0);
    expect(await ctmgr('network', 'rm', 'app')).toMatchObject({ code: 0, out: 'app\n' });
    // what is left is the default bridge network, which cannot be removed
    expect(JSON.parse((await ctmgr('network', 'ls', '--format', 'json')).out).map((n: { name: string }) => n.name)).toEqual(['bridge']);
    expect((await ctmgr('network', 'rm', 'bridge')).err).toMatch(/bridge is the default network \(like docker0\) and cannot be removed/);
  });

  it('shows nodes with status and lag', async () => {
    const ls = await ctmgr('node', 'ls');
    expect(ls.out).toMatch(/^NAME\s+ADDRESS\s+STATUS\s+ENDPOINTS\s+LAG/);
    expect(ls.out).toMatch(/\nh1\s+192\.168\.90\.1\s+ready\s+0\s+\d+/);
    const nodes = JSON.parse((await ctmgr('node', 'ls', '--format', 'json')).out);
    expect(nodes[0]).toMatchObject({ name: 'h1', status: 'ready' });
    const rm = await ctmgr('node', 'rm', 'h1');
    expect(rm.code).toBe(1);
    expect(rm.err).toMatch(/is ready.*--force/);
  });

  it('gives one clear line and a non-zero exit for bad input and usage errors', async () => {
    const bad = await ctmgr('network', 'create', '--subnet', '10.0.0.0/31', 'tiny');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/^ctmgr: subnet 10\.0\.0\.0\/31 is a \/31.*use \/30 or larger/);
    const usage = await ctmgr('network', 'create', '--bogus', 'x');
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/--help/);
    const help = await ctmgr('network', 'create', '--help');
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/--subnet/);
    const down = await new Promise<{ code: number; err: string }>((resolve) =>
      execFile(process.execPath, [CTMGR, '--manager', '127.0.0.1:1', '--tls-dir', mgr.adminDir, 'network', 'ls'], (error, _out, err) =>
        resolve({ code: (error as { code?: number } | null)?.code ?? 0, err }),
      ),
    );
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/cannot reach the manager at 127\.0\.0\.1:1/);
  });
});
