import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailableReason, startLab, type Lab } from './lab/lab.js';
import { REPO, ok, waitUntil } from './harness.js';

// The lab comes up through the join flow (every agent starts with the worker token), with
// node certificates that live 8 s, so they are renewed every few seconds throughout.
const reason = labUnavailableReason();
let lab: Lab;

const ready = async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/\bready\b/g) ?? []).length;
const ipOf = async (name: string) => (JSON.parse(await ok(lab.ctmgr('inspect', name))) as { endpoints: { ip: string }[] }[])[0]!.endpoints[0]!.ip;
const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;

describe.skipIf(reason !== undefined)(`cluster security in the lab${reason ? ` (skipped: ${reason})` : ''}`, () => {
  beforeAll(async () => {
    lab = await startLab({ hosts: 4, agents: false, resyncSeconds: 2, managerArgs: ['--node-cert-ttl', '8s'] });
    for (const h of ['h1', 'h2', 'h3']) lab.startAgent(h);
    await waitUntil(async () => (await ready()) === 3, 30_000, () => lab.logs(20));
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.60.0.0/24', 'app'));
    for (const [c, h] of [['c1', 'h1'], ['c2', 'h2'], ['c3', 'h3']] as const) await ok(lab.ctmgr('run', '-d', '--name', c, '--network', 'app', '--node', h, '--', 'sleep', 'infinity'));
  }, 120_000);
  afterAll(async () => {
    await lab?.destroy();
  });

  it('renews node certificates during a continuous ping: nothing lost, no stream reconnects', async () => {
    const target = await ipOf('c3');
    await waitUntil(async () => (await lab.ctagent('h1', 'exec', 'c1', '--', 'ping', '-c1', '-W1', target)).code === 0, 20_000, () => lab.logs(20));
    const connects = () => count(lab.agentLog('h1'), /connected to manager/g) + count(lab.agentLog('h3'), /connected to manager/g);
    const renewals = () => count(lab.agentLog('h1'), /renewed the node certificate/g);
    const [before, renewedBefore] = [connects(), renewals()];
    // 12 s at 5 pings a second: at least two renewals of each end's 8 s certificate
    const out = await ok(lab.ctagent('h1', 'exec', 'c1', '--', 'ping', '-q', '-i', '0.2', '-c', '60', '-W', '1', target));
    expect(out).toMatch(/60 packets transmitted, 60 received, 0% packet loss/);
    expect(renewals() - renewedBefore).toBeGreaterThanOrEqual(2);
    expect(connects()).toBe(before);
  });

  it('a container on a non-internal network cannot use the manager\'s API without credentials', async () => {
    const probe = join(REPO, 'test', 'src', 'fixtures', 'api-probe.mjs');
    const res = JSON.parse(await ok(lab.ctagent('h1', 'exec', 'c1', '--', process.execPath, probe, `${lab.manager.addr}:4700`, join(lab.adminDir, 'ca.pem')))) as Record<string, string>;
    expect(res.plaintext).toMatch(/^UNAVAILABLE/);
    expect(res.noCert).toMatch(/^UNAUTHENTICATED: no valid client certificate/);
    expect(lab.managerLog()).toMatch(/listNetworks refused peer="[\d.:]+"/);
  });

  it('token rotation: the old token no longer joins; the new one joins h4', async () => {
    const old = lab.joinToken;
    lab.joinToken = (await ok(lab.ctmgr('join-token', '--rotate', '-q', 'worker'))).trim();
    expect(lab.joinToken).not.toBe(old);
    const rotated = lab.joinToken;
    lab.joinToken = old;
    lab.startAgent('h4');
    await waitUntil(() => /join token is not valid for this cluster/.test(lab.agentLog('h4')), 20_000, () => lab.agentLog('h4'));
    await lab.agentProcess('h4')!.exited;
    lab.joinToken = rotated;
    lab.startAgent('h4');
    await waitUntil(async () => (await ready()) === 4, 30_000, () => lab.agentLog('h4'));
    // the hosts that joined with the old token are unaffected
    expect(await ready()).toBe(4);
  });

  it('node rm h2: its agent is refused and its containers are gone; h1 and h3 are unaffected', async () => {
    const c2 = await ipOf('c2');
    const c3 = await ipOf('c3');
    await ok(lab.ctmgr('node', 'rm', '--force', 'h2'));
    await waitUntil(() => /refuses this node's certificate/.test(lab.agentLog('h2')), 20_000, () => lab.agentLog('h2'));
    expect(lab.agentLog('h2')).toMatch(/certificate of node h2 was revoked/);
    expect(await ok(lab.ctmgr('ps'))).not.toMatch(/\bc2\b/);
    // withdrawn from the others; traffic between h1 and h3 goes on
    await waitUntil(async () => (await lab.ctagent('h1', 'exec', 'c1', '--', 'ping', '-c1', '-W1', c2)).code !== 0, 20_000);
    expect((await lab.ctagent('h1', 'exec', 'c1', '--', 'ping', '-c3', '-i', '0.2', '-W1', c3)).code).toBe(0);
    // restarted without a token it cannot come back; with one, it joins anew
    await lab.stopAgent('h2');
    const token = lab.joinToken;
    lab.joinToken = '';
    lab.startAgent('h2');
    await waitUntil(() => /this host has not joined the cluster/.test(lab.agentLog('h2')), 20_000, () => lab.agentLog('h2'));
    await lab.agentProcess('h2')!.exited;
    lab.joinToken = token;
    lab.startAgent('h2');
    await waitUntil(async () => (await ready()) === 4, 30_000, () => lab.agentLog('h2'));
  });

  it('ctmgr ca rotate during a continuous ping: nothing lost, no stream reconnects, every agent renews from the new root', async () => {
    const target = await ipOf('c3');
    const connects = () => ['h1', 'h2', 'h3', 'h4'].reduce((n, h) => n + count(lab.agentLog(h), /connected to manager/g), 0);
    const before = connects();
    const ping = ok(lab.ctagent('h1', 'exec', 'c1', '--', 'ping', '-q', '-i', '0.2', '-c', '40', '-W', '1', target));
    await new Promise((r) => setTimeout(r, 1000));
    const out = await ok(lab.ctmgr('ca', 'rotate'));
    expect(out).toMatch(/CA rotated: 4 of 4 nodes renewed from the new root/);
    expect(await ping).toMatch(/40 packets transmitted, 40 received, 0% packet loss/);
    expect(connects()).toBe(before);
    for (const h of ['h1', 'h2', 'h3', 'h4']) expect(lab.agentLog(h)).toMatch(/the cluster CA is rotating: renewing the node certificate now/);
    // after it, an agent restarts on its renewed certificate, and the CLI on the re-issued admin credential
    const joins = count(lab.agentLog('h3'), /joined the cluster/g);
    await lab.stopAgent('h3');
    lab.startAgent('h3');
    await waitUntil(async () => (await ready()) === 4, 30_000, () => lab.agentLog('h3'));
    expect(count(lab.agentLog('h3'), /joined the cluster/g)).toBe(joins); // no new join: its renewed certificate served
  });
});
