import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailableReason, startLab, type Lab } from './lab/lab.js';
import { REPO, waitUntil, ok } from './harness.js';

// The embedded resolver: names across hosts, scoping, PTR, TCP, forwarding and SERVFAIL.
const reason = labUnavailableReason();
let lab: Lab;
let upstream: ChildProcess | undefined;

const ipOf = async (name: string) => (JSON.parse(await ok(lab.ctmgr('inspect', name))) as { endpoints: { ip: string }[] }[])[0]!.endpoints[0]!.ip;
const dig = (host: string, sandbox: string, ...args: string[]) => lab.ctagent(host, 'exec', sandbox, '--', 'dig', '+time=2', '+tries=1', ...args);

describe.skipIf(reason !== undefined)(`embedded DNS${reason ? ` (skipped: ${reason})` : ''}`, () => {
  let c1: string;
  beforeAll(async () => {
    lab = await startLab({ hosts: 3, agents: true, resyncSeconds: 5 });
    await waitUntil(async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length === 3, 30_000);
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.60.0.0/24', 'app'));
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.61.0.0/24', 'other'));
    await ok(lab.ctmgr('run', '-d', '--name', 'c1', '--network', 'app', '--network-alias', 'www', '--node', 'h1', '--', 'sleep', 'infinity'));
    await ok(lab.ctmgr('run', '-d', '--name', 'c3', '--network', 'app', '--node', 'h3', '--', 'sleep', 'infinity'));
    await ok(lab.ctmgr('run', '-d', '--name', 'o2', '--network', 'other', '--node', 'h2', '--', 'sleep', 'infinity'));
    c1 = await ipOf('c1');
    await waitUntil(async () => (await dig('h3', 'c3', '+short', 'c1')).stdout.trim() === c1, 20_000, () => lab.logs(20));
  }, 90_000);
  afterAll(async () => {
    upstream?.kill('SIGKILL');
    await lab?.destroy();
  });

  it('resolves a container on another host by name, alias and <name>.<network>, with getent too', async () => {
    expect((await ok(dig('h3', 'c3', '+short', 'www'))).trim()).toBe(c1);
    expect((await ok(dig('h3', 'c3', '+short', 'C1.APP'))).trim()).toBe(c1);
    expect((await ok(lab.ctagent('h3', 'exec', 'c3', '--', 'getent', 'hosts', 'c1'))).split(/\s+/)[0]).toBe(c1);
    expect((await ok(dig('h3', 'c3', '+short', '+tcp', 'c1'))).trim()).toBe(c1);
  });

  it('answers PTR, NODATA for AAAA, and NXDOMAIN for a name that lives on another network', async () => {
    expect((await ok(dig('h3', 'c3', '+short', '-x', c1))).trim()).toBe('c1.app.');
    const aaaa = await ok(dig('h3', 'c3', 'AAAA', 'c1'));
    expect(aaaa).toMatch(/status: NOERROR/);
    expect(aaaa).toMatch(/ANSWER: 0/);
    expect(await ok(dig('h3', 'c3', 'o2'))).toMatch(/status: NXDOMAIN/);
  });

  it('forwards other names to the container\'s --dns upstream, and answers SERVFAIL promptly when it is gone', async () => {
    const h2 = lab.hosts[1]!;
    upstream = spawn('ip', ['netns', 'exec', h2.ns, process.execPath, join(REPO, 'test/src/lab/fixtures/dns-upstream.mjs'), REPO, h2.addr, 'example.test', '192.0.2.77'], { stdio: 'ignore' });
    await ok(lab.ctmgr('run', '-d', '--name', 'fw', '--network', 'app', '--node', 'h3', '--dns', h2.addr, '--', 'sleep', 'infinity'));
    await waitUntil(async () => (await dig('h3', 'fw', '+short', 'example.test')).stdout.trim() === '192.0.2.77', 20_000, () => lab.logs(20));
    expect(await ok(dig('h3', 'fw', 'nothing.test'))).toMatch(/status: NXDOMAIN/);
    upstream.kill('SIGKILL');
    const t0 = Date.now();
    // dig waits longer than our 2 s forwarding timeout, so the answer it gets is ours
    const fail = await lab.ctagent('h3', 'exec', 'fw', '--', 'dig', '+time=5', '+tries=1', 'example.test');
    expect(fail.stdout).toMatch(/status: SERVFAIL/);
    expect(Date.now() - t0).toBeLessThan(4500);
  });

  it('does not answer on the host\'s underlay address', async () => {
    const r = await lab.exec('h1', 'dig', '+time=1', '+tries=1', `@${lab.hosts[2]!.addr}`, 'c1');
    expect(r.stdout).not.toMatch(/status: NOERROR/);
  });
});
