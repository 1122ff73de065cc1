import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailableReason, startLab, type Lab } from './lab/lab.js';
import { REPO, waitUntil, ok } from './harness.js';

// Two managers on one etcd; the first disappears: agents move to the second, traffic never stops.
const reason = labUnavailableReason();
let lab: Lab;
let second: ChildProcess | undefined;


describe.skipIf(reason !== undefined)(`manager failover${reason ? ` (skipped: ${reason})` : ''}`, () => {
  beforeAll(async () => {
    // agents know both managers; the second is started below, in the manager's namespace, on
    // the first one's embedded etcd (which stands in for an etcd cluster that outlives it)
    lab = await startLab({ hosts: 2, agents: false, resyncSeconds: 2 });
    // The embedded etcd takes only clients with a certificate from its own CA: the second
    // manager uses the first one's (as an operator would hand it an etcd client certificate).
    const tls = join(lab.workDir, 'manager', 'etcd', 'tls', 'client');
    const etcdTls = ['--etcd-cacert', join(tls, 'ca.pem'), '--etcd-cert', join(tls, 'cert.pem'), '--etcd-key', join(tls, 'key.pem')];
    second = spawn(
      'ip',
      ['netns', 'exec', lab.manager.ns, process.execPath, join(REPO, 'packages/cli/dist/bin/ctmgr'), 'serve', '--listen', '0.0.0.0:4710', '--http', '127.0.0.1:4711', '--etcd-endpoints', 'https://127.0.0.1:23790', ...etcdTls, '--data-dir', join(lab.workDir, 'manager2')],
      { stdio: 'ignore' },
    );
    const managers = `${lab.manager.addr}:4700,${lab.manager.addr}:4710`;
    for (const h of lab.hosts) lab.startAgent(h.name, ['--manager', managers]);
    await waitUntil(async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length === 2, 30_000, () => lab.logs(20));
  }, 90_000);
  afterAll(async () => {
    second?.kill('SIGKILL');
    await lab?.destroy();
  });

  it('keeps traffic flowing and follows changes through the second manager when the first is gone', async () => {
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.50.0.0/24', 'app'));
    await ok(lab.ctmgr('run', '-d', '--name', 'c1', '--network', 'app', '--node', 'h1', '--', 'sleep', 'infinity'));
    await ok(lab.ctmgr('run', '-d', '--name', 'c2', '--network', 'app', '--node', 'h2', '--', 'sleep', 'infinity'));
    const ipOf = async (name: string, via = '127.0.0.1:4700') =>
      (JSON.parse(await ok(lab.ctmgr('--manager', via, 'inspect', name))) as { endpoints: { ip: string }[] }[])[0]!.endpoints[0]!.ip;
    const c2 = await ipOf('c2');
    await waitUntil(async () => (await lab.ctagent('h1', 'exec', 'c1', '--', 'ping', '-c1', '-W1', c2)).code === 0, 15_000, () => lab.logs(20));

    const pinger = lab.ctagent('h1', 'exec', 'c1', '--', 'ping', '-i', '0.05', '-c', '100', c2); // ~5 s
    await new Promise((r) => setTimeout(r, 300));
    await lab.stopManager('SIGKILL');
    // both agents reconnect to the second manager
    const viaSecond = (...args: string[]) => lab.ctmgr('--manager', '127.0.0.1:4710', ...args);
    await waitUntil(async () => /h1.*ready[\s\S]*h2.*ready/.test((await viaSecond('node', 'ls')).stdout), 20_000, () => lab.logs(20));
    expect((await pinger).stdout).toMatch(/100 packets transmitted, 100 received, 0% packet loss/);

    await ok(viaSecond('run', '-d', '--name', 'c3', '--network', 'app', '--node', 'h2', '--', 'sleep', 'infinity'));
    const c3 = await ipOf('c3', '127.0.0.1:4710');
    await waitUntil(async () => (await lab.ctagent('h1', 'exec', 'c1', '--', 'ping', '-c1', '-W1', c3)).code === 0, 15_000, () => lab.logs(20));
  });
});
