import { describe, expect, it } from 'vitest';
import type { Container } from '../model/container.js';
import type { Node } from '../model/node.js';
import { parseConstraint, parseServiceRequest, satisfies, type Service } from '../model/service.js';
import { expectInvalid } from '../testing/expect-invalid.js';
import { planService, removableTasks } from './spread.js';

const node = (name: string, labels: Record<string, string> = {}): Node => ({ name, addr: '192.168.0.1', hostname: name, labels, routes: [], registeredAt: '' });
const svc = (over: Partial<Service> = {}): Service => ({
  id: 's1', name: 'web', networks: ['n1'], replicas: 3, endpointMode: 'vip', constraints: [], cmd: ['sleep', '1'], env: {}, createdAt: '', updatedAt: '', ...over,
});
const task = (slot: number, nodeName: string, state = 'running', desired: 'running' | 'shutdown' = 'running', createdAt = ''): Container => ({
  id: `t${slot}${nodeName}${createdAt}`, name: `web.${slot}.${nodeName}${createdAt}`, node: nodeName, cmd: ['x'], env: {}, hostname: '', dns: [], dnsSearch: [], createdAt,
  mode: 'network', sharedWith: '', attachPid: 0,
  task: { serviceId: 's1', service: 'web', slot, endpointMode: 'vip', desired },
  status: { state: state as 'running', message: '', exitCode: 0, restarts: 0, since: '' },
});
const nodes = [node('h1'), node('h2', { zone: 'b' }), node('h3', { zone: 'b' })];

describe('planService (spread)', () => {
  it('spreads new tasks over the ready nodes, one each, slots 1..N', () => {
    expect(planService(svc(), [], nodes, new Map()).create).toEqual([
      { slot: 1, node: 'h1' },
      { slot: 2, node: 'h2' },
      { slot: 3, node: 'h3' },
    ]);
  });

  it('prefers nodes with fewer of this service, then fewer containers overall', () => {
    const plan = planService(svc({ replicas: 3 }), [task(1, 'h1')], nodes, new Map([['h2', 5]]));
    expect(plan.create).toEqual([
      { slot: 2, node: 'h3' },
      { slot: 3, node: 'h2' },
    ]);
  });

  it('host-mode ports: one task per node, none where the port is taken, and says why the rest waits', () => {
    const plan = planService(svc({ replicas: 4 }), [task(1, 'h1')], nodes, new Map(), { onePerNode: true, blocked: new Set(['h3']) });
    expect(plan.create).toEqual([{ slot: 2, node: 'h2' }]);
    expect(plan.pending).toMatch(/^2 task\(s\) pending: the service publishes in host mode/);
    expect(planService(svc({ replicas: 3 }), [], nodes, new Map(), { onePerNode: true, blocked: new Set() }).create.map((c) => c.node)).toEqual(['h1', 'h2', 'h3']);
  });

  it('honours constraints, and says why slots wait when nobody satisfies them', () => {
    expect(planService(svc({ replicas: 2, constraints: ['node.labels.zone==b'] }), [], nodes, new Map()).create.map((c) => c.node)).toEqual(['h2', 'h3']);
    expect(planService(svc({ replicas: 1, constraints: ['node.name!=h1'] }), [], nodes, new Map()).create[0]!.node).toBe('h2');
    const none = planService(svc({ replicas: 2, constraints: ['node.labels.zone==mars'] }), [], nodes, new Map());
    expect(none.create).toEqual([]);
    expect(none.pending).toMatch(/2 task\(s\) pending: no ready node satisfies "node.labels.zone==mars" \(nodes: h1, h2 \[zone=b\], h3 \[zone=b\]\)/);
    expect(planService(svc(), [], [], new Map()).pending).toMatch(/no node is ready/);
  });

  it('retires surplus slots on scale-down and duplicate slots, keeping the running one', () => {
    const tasks = [task(1, 'h1'), task(2, 'h2'), task(3, 'h3'), task(2, 'h3', 'starting', 'running', 'z')];
    const plan = planService(svc({ replicas: 2 }), tasks, nodes, new Map());
    expect(plan.create).toEqual([]);
    expect(plan.shutdown.sort()).toEqual(['web.2.h3z', 'web.3.h3']);
  });

  it('fills a slot again when its task is retiring (a retiring task does not count)', () => {
    const plan = planService(svc({ replicas: 1 }), [task(1, 'h1', 'running', 'shutdown')], nodes, new Map());
    expect(plan.create).toEqual([{ slot: 1, node: 'h1' }]);
  });
});

describe('removableTasks', () => {
  it('removes a retiring task once every ready node acked its revision, or after the timeout', () => {
    const retiring = [{ name: 'a', revision: 10, since: 0 }, { name: 'b', revision: 12, since: 0 }];
    expect(removableTasks(retiring, [11, 15], 100, 3000)).toEqual(['a']);
    expect(removableTasks(retiring, [11, 15], 3000, 3000)).toEqual(['a', 'b']);
    expect(removableTasks(retiring, [], 0, 3000)).toEqual(['a', 'b']); // no ready node can still answer
  });
});

describe('service input', () => {
  it('parses constraints and matches them against nodes', () => {
    expect(parseConstraint('node.labels.zone == b')).toMatchObject({ field: 'label', label: 'zone', op: '==', value: 'b' });
    expect(satisfies(node('H2'), [parseConstraint('node.name==h2')])).toBe(true);
    expectInvalid(() => parseConstraint('node.color==red'), /constraint "node.color==red" is not understood; write node.name==NAME/);
  });

  it('rejects what Docker rejects, with the fix named', () => {
    const base = { name: 'web', networks: ['app'], replicas: 1, cmd: ['sleep', '1'] };
    expect(parseServiceRequest(base)).toMatchObject({ name: 'web', replicas: 1, endpointMode: 'vip' });
    expectInvalid(() => parseServiceRequest({ ...base, replicas: -1 }), /replicas cannot be negative/);
    expectInvalid(() => parseServiceRequest({ ...base, replicas: 1.5 }), /not a whole number/);
    expectInvalid(() => parseServiceRequest({ ...base, networks: [] }), /needs at least one network/);
    expectInvalid(() => parseServiceRequest({ ...base, endpointMode: 'rr' }), /use vip or dnsrr/);
    expectInvalid(() => parseServiceRequest({ ...base, name: 'tasks' }), /reserved/);
    expectInvalid(() => parseServiceRequest({ ...base, cmd: [] }), /no command given/);
    expectInvalid(() => parseServiceRequest({ ...base, name: 'we b' }), /not a valid DNS label/);
  });
});
