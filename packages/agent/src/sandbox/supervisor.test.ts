import type { Container, DesiredSandbox } from '@ctnet/core';
import { describe, expect, it } from 'vitest';
import { createStateReporter } from '../reporter.js';
import type { SandboxRecord } from './runtime.js';
import { createSupervisor, restartDelay } from './supervisor.js';

const container = (name: string, task: boolean): Container => ({
  id: `id-${name}`, name, node: 'h1', cmd: ['x'], env: {}, hostname: '', dns: [], dnsSearch: [], createdAt: '', mode: 'network', sharedWith: '', attachPid: 0,
  ...(task && { task: { serviceId: 's', service: 'web', slot: 1, endpointMode: 'vip' as const, desired: 'running' as const } }),
});
const sandbox = (name: string, task = true): DesiredSandbox => ({ container: container(name, task), netns: `ns-${name}`, ownsNetns: true, interfaces: [] });
const record = (name: string, pid: number, startedAt: number, extra: Partial<SandboxRecord> = {}): SandboxRecord => ({
  name, containerId: `id-${name}`, netns: `ns-${name}`, ownsNetns: true, attached: false, pid, log: '', startedAt: new Date(startedAt).toISOString(), interfaces: [], ...extra,
});

describe('supervisor', () => {
  it('reports running, then failed with the exit, and restarts a task after its backoff', () => {
    const sup = createSupervisor();
    const sb = sandbox('web.1.x');
    const rec = record('web.1.x', 10, 0);
    const recs = new Map([[rec.name, rec]]);
    let alive = true;
    expect(sup.evaluate([sb], recs, () => alive, 1000).states[0]!.status.state).toBe('running');
    alive = false;
    sup.exited('web.1.x', null, 'SIGKILL');
    const ended = sup.evaluate([sb], recs, () => alive, 2000);
    expect(ended.states[0]!.status).toMatchObject({ state: 'failed', exitCode: 137, message: 'killed by SIGKILL' });
    expect(ended.restart).toEqual([]);
    expect(ended.nextDue).toBe(2000 + restartDelay(0));
    const due = sup.evaluate([sb], recs, () => alive, 2000 + restartDelay(0));
    expect(due.restart.map((r) => r.sandbox.container.name)).toEqual(['web.1.x']);
    expect(due.restart[0]!.record.streak).toBe(1);
  });

  it('backs off exponentially on quick failures, up to 10 s, and resets after a stable run', () => {
    expect([0, 1, 2, 3, 10].map(restartDelay)).toEqual([200, 400, 800, 1600, 10_000]);
    const sup = createSupervisor();
    const sb = sandbox('w');
    const quick = new Map([['w', record('w', 11, 0, { streak: 3, restarts: 3 })]]);
    expect(sup.evaluate([sb], quick, () => false, 1000).nextDue).toBe(1000 + 1600);
    const sup2 = createSupervisor();
    const stable = new Map([['w', record('w', 12, 0, { streak: 3, restarts: 3 })]]);
    expect(sup2.evaluate([sb], stable, () => false, 60_000).nextDue).toBe(60_000 + 200);
  });

  it('never restarts a plain container or a retiring task; exit 0 is "exited"', () => {
    const sup = createSupervisor();
    const plain = sandbox('c', false);
    sup.exited('c', 0, null);
    const r = sup.evaluate([plain], new Map([['c', record('c', 13, 0)]]), () => false, 5000);
    expect(r.states[0]!.status).toMatchObject({ state: 'exited', exitCode: 0 });
    expect(r.restart).toEqual([]);
    expect(r.nextDue).toBeUndefined();
    const retiring: DesiredSandbox = { ...sandbox('t'), container: { ...container('t', true), task: { ...container('t', true).task!, desired: 'shutdown' } } };
    expect(sup.evaluate([retiring], new Map([['t', record('t', 14, 0)]]), () => false, 9000).restart).toEqual([]);
  });
});

describe('state reporter', () => {
  it('sends only what changed, and everything again after a reconnect', () => {
    const sent: string[][] = [];
    let up = true;
    const rep = createStateReporter((s) => (up ? (sent.push(s.map((x) => `${x.name}:${x.status?.state}`)), true) : false));
    const st = (name: string, state: 'running' | 'failed') => ({ name, containerId: name, status: { state, message: '', exitCode: 0, restarts: 0, since: String(Math.random()) } });
    rep.update([st('a', 'running'), st('b', 'running')]);
    rep.update([st('a', 'running'), st('b', 'running')]);
    rep.update([st('a', 'failed'), st('b', 'running')]);
    up = false;
    rep.update([st('a', 'running'), st('b', 'running')]); // lost: not connected
    up = true;
    rep.resendAll();
    expect(sent).toEqual([['a:running', 'b:running'], ['a:failed'], ['a:running', 'b:running']]);
  });
});
