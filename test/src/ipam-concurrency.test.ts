import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestEtcd, type TestEtcd } from '@ctnet/store';
import { apiClient, connectAgent, startManagerProcess, waitUntil, type ManagerProcess } from './harness.js';

// Two ctmgr processes on one etcd, 16 concurrent allocators each, 5,000 allocations in all.
const PER_MANAGER = 16;
const TOTAL = 5000;

let etcd: TestEtcd;
const managers: ManagerProcess[] = [];

beforeAll(async () => {
  etcd = await startTestEtcd();
  for (let i = 0; i < 2; i++) managers.push(await startManagerProcess({ etcd: etcd.endpoint }));
});
afterAll(async () => {
  for (const m of managers) await m.stop();
  await etcd?.stop();
});

it('never hands out an address twice, and usage returns to zero after deleting everything', async () => {
  const apis = managers.map((m) => apiClient(m));
  const agent = connectAgent(managers[0]!, { name: 'n1', addr: '192.168.60.1' });
  await waitUntil(async () => (await apis[1]!.listNodes({})).nodes.length === 1, 10_000);
  await apis[0]!.createNetwork({ name: 'big', subnet: '10.64.0.0/18' });

  const created: { name: string; ip: string; manager: number }[] = [];
  let next = 0;
  const worker = async (m: number): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= TOTAL) return;
      const ep = await apis[m]!.createEndpoint({ network: 'big', node: 'n1', name: `ep${i}` });
      created.push({ name: ep.name, ip: ep.ip, manager: m });
    }
  };
  await Promise.all(apis.flatMap((_, m) => Array.from({ length: PER_MANAGER }, () => worker(m))));

  expect(created).toHaveLength(TOTAL);
  expect(new Set(created.map((c) => c.ip)).size).toBe(TOTAL);
  expect(created.filter((c) => c.manager === 1).length).toBeGreaterThan(TOTAL / 4); // both managers did real work
  const detail = await apis[1]!.inspectNetwork({ nameOrId: 'big' });
  expect(detail.usage?.allocated).toBe(TOTAL);
  expect(detail.endpoints.map((e) => e.ip).sort()).toEqual(created.map((c) => c.ip).sort());

  let idx = 0;
  const deleter = async (m: number): Promise<void> => {
    for (;;) {
      const c = created[idx++];
      if (!c) return;
      await apis[m]!.deleteEndpoint({ network: 'big', name: c.name });
    }
  };
  await Promise.all(apis.flatMap((_, m) => Array.from({ length: PER_MANAGER }, () => deleter(m))));
  const after = await apis[0]!.inspectNetwork({ nameOrId: 'big' });
  expect(after.usage).toEqual({ total: 16381, allocated: 0, free: 16381 });
  expect(after.endpoints).toEqual([]);
  agent.close();
  for (const a of apis) a.close();
});
