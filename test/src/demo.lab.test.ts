import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labUnavailableReason } from './lab/lab.js';
import { run } from './lab/process.js';
import { REPO } from './harness.js';

// The README's first command, as a user runs it (`bash deploy/demo.sh --once`; set-up skipped,
// the suite has just built everything): it must keep showing what it says it shows.
const reason = labUnavailableReason();
const stateDir = mkdtempSync(join(tmpdir(), 'ctnet-demo-state-'));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

describe.skipIf(reason !== undefined)(`deploy/demo.sh${reason ? ` (skipped: ${reason})` : ''}`, () => {
  it('finds a service on two hosts by name from a third, reaches it through its VIP, and leaves nothing behind', async () => {
    const before = new Set(readdirSync('/run/netns'));
    const r = await run(['bash', join(REPO, 'deploy', 'demo.sh'), '--once'], {
      env: { ...process.env, CTNET_DEMO_SKIP_SETUP: '1', LAB_STATE_DIR: stateDir },
      timeoutMs: 240_000,
    });
    const out = r.stdout.replace(/\x1b\[[0-9;]*m/g, '');
    expect(r.code, `${out}\n${r.stderr}`).toBe(0);
    // service create's progress, then its tasks on h1 and h2 only
    expect(out).toMatch(/web: tasks running \d\/3, hosts converged \d\/3/);
    expect(out).toMatch(/web: converged in \d+ ms/);
    const tasks = [...out.matchAll(/^([0-9a-f]{12})\s+web\.\d\.\1\s+(h\d)\s+running\s+running\s+\d+\s+(10\.10\.0\.\d+)$/gm)];
    expect(tasks).toHaveLength(3);
    expect(new Set(tasks.map((t) => t[2]))).toEqual(new Set(['h1', 'h2'])); // spread, and never on h3
    // dig from h3: the VIP (no task's address), then every task
    const vip = /^web\.\s+\d+\s+IN\s+A\s+(10\.10\.0\.\d+)$/m.exec(out)?.[1];
    expect(vip).toBeDefined();
    expect(tasks.map((t) => t[3])).not.toContain(vip);
    const taskAnswers = [...out.matchAll(/^tasks\.web\.\s+\d+\s+IN\s+A\s+(10\.10\.0\.\d+)$/gm)].map((m) => m[1]);
    expect(taskAnswers.sort()).toEqual(tasks.map((t) => t[3]).sort());
    // through the VIP: each answer is the hostname (id) of a task that answered
    const answered = out.split('nc web 80, three times')[1]!.split('\n').slice(1).filter((l) => /^[0-9a-f]{12}$/.test(l));
    expect(answered).toHaveLength(3);
    for (const id of answered) expect(tasks.map((t) => t[1])).toContain(id);
    expect(out).toMatch(/^node h3: OK/m);
    // --once: the lab is gone again
    expect(readdirSync('/run/netns').filter((ns) => !before.has(ns))).toEqual([]);
  }, 300_000);
});
