import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailableReason, startLab, type Lab } from './lab/lab.js';
import { REPO, waitUntil } from './harness.js';

// 200 sandboxes spread over 3 hosts: every host converges, and sampled pairs across hosts reach each other.
const reason = labUnavailableReason();
const COUNT = 200;
let lab: Lab;

describe.skipIf(reason !== undefined)(`scale${reason ? ` (skipped: ${reason})` : ''}`, () => {
  beforeAll(async () => {
    lab = await startLab({ hosts: 3, agents: true, resyncSeconds: 10 });
    await waitUntil(async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length === 3, 30_000);
  }, 60_000);
  afterAll(async () => lab?.destroy());

  it(`runs ${COUNT} sandboxes over 3 hosts, all reachable across hosts (sampled pairs)`, async () => {
    const ok = async (p: Promise<{ code: number; stdout: string; stderr: string }>) => {
      const r = await p;
      if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr || r.stdout}`);
      return r.stdout;
    };
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.40.0.0/22', 'big'));
    await ok(lab.execIn(lab.manager.ns, process.execPath, join(REPO, 'test/src/lab/fixtures/bulk-run.mjs'), REPO, 'big', String(COUNT), 'h1,h2,h3', lab.adminDir));
    const running = async (host: string) => ((await lab.ctagent(host, 'ps')).stdout.match(/ running /g) ?? []).length;
    await waitUntil(async () => (await running('h1')) + (await running('h2')) + (await running('h3')) === COUNT, 120_000, () => lab.logs(30));
    // every host acknowledged the final state
    const lags = async () => (JSON.parse((await lab.ctmgr('node', 'ls', '--format', 'json')).stdout) as { lag: number }[]).map((n) => n.lag);
    await waitUntil(async () => (await lags()).every((l) => l === 0), 30_000, () => 'lag never reached 0 on every node');
    const all = JSON.parse(await ok(lab.ctmgr('ps', '--format', 'json'))) as { name: string; node: string; endpoints: { ip: string }[] }[];
    expect(all).toHaveLength(COUNT);
    expect(new Set(all.map((c) => c.endpoints[0]!.ip)).size).toBe(COUNT);
    const byHost = (h: string) => all.filter((c) => c.node === h);
    const pick = <T>(xs: T[], i: number) => xs[(i * 37) % xs.length]!;
    for (let i = 0; i < 12; i++) {
      const [from, to] = [['h1', 'h2'], ['h2', 'h3'], ['h3', 'h1']][i % 3]!;
      const a = pick(byHost(from!), i);
      const b = pick(byHost(to!), i + 5);
      const r = await lab.ctagent(from!, 'exec', a.name, '--', 'ping', '-c1', '-W2', b.endpoints[0]!.ip);
      expect(r.code, `${a.name}@${from} -> ${b.name}@${to} (${b.endpoints[0]!.ip})`).toBe(0);
    }
  }, 240_000);
});
