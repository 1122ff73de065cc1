import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailableReason, startLab, type Lab } from './lab/lab.js';
import { waitUntil, ok } from './harness.js';

// Services across hosts: placement, VIP and dnsrr names, tasks.<svc>, task names, PTR,
// scaling with DNS checked on every host, restarts, and bad input.
const reason = labUnavailableReason();
let lab: Lab;

interface TaskView {
  name: string;
  node: string;
  desired: string;
  state: string;
  restarts: number;
  ips: string[];
}
interface ServiceView {
  running: number;
  replicas: number;
  vips: { network: string; ip: string }[];
  converged: boolean;
  pending: string;
  tasks: TaskView[];
}

const inspect = async (name: string) => JSON.parse(await ok(lab.ctmgr('service', 'inspect', name))) as ServiceView;
const dig = (host: string, sandbox: string, ...args: string[]) => lab.ctagent(host, 'exec', sandbox, '--', 'dig', '+time=2', '+tries=1', ...args);
const short = async (host: string, sandbox: string, name: string) => {
  const r = await dig(host, sandbox, '+short', name);
  if (r.code !== 0) throw new Error(`dig ${name} from ${sandbox} on ${host}: exit ${r.code}: ${r.stdout}${r.stderr}`);
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
};
const sorted = (xs: readonly string[]) => [...xs].sort();
const runningIps = (v: ServiceView) => sorted(v.tasks.filter((t) => t.desired === 'running' && t.state === 'running').flatMap((t) => t.ips));

describe.skipIf(reason !== undefined)(`services${reason ? ` (skipped: ${reason})` : ''}`, () => {
  beforeAll(async () => {
    lab = await startLab({ hosts: 3, agents: true, resyncSeconds: 5 });
    await waitUntil(async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length === 3, 30_000);
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.70.0.0/24', 'app'));
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.71.0.0/24', 'other'));
    for (const h of ['h1', 'h2', 'h3']) {
      await ok(lab.ctmgr('run', '-d', '--name', `cl${h.slice(1)}`, '--network', 'app', '--node', h, '--', 'sleep', 'infinity'));
    }
  }, 90_000);
  afterAll(async () => {
    await lab?.destroy();
  });

  it('vip mode: tasks on h1 and h2; from h3 the name is the VIP, tasks.NAME every task, task names and PTR too', async () => {
    const out = await ok(lab.ctmgr('service', 'create', '--name', 'web', '--network', 'app', '--replicas', '2', '--constraint', 'node.name!=h3', '--', 'sleep', 'infinity'));
    expect(out).toMatch(/web: tasks running 2\/2, hosts converged 3\/3/);
    expect(out).toMatch(/converged in \d+ ms/);
    const v = await inspect('web');
    expect(sorted(v.tasks.map((t) => t.node))).toEqual(['h1', 'h2']);
    expect(v.tasks.every((t) => t.state === 'running' && /^web\.[12]\.[0-9a-f]{12}$/.test(t.name))).toBe(true);
    const vip = v.vips[0]!.ip;
    expect(v.vips).toEqual([{ network: 'app', ip: vip }]);
    // converged means every host applied it: no waiting here
    expect(await short('h3', 'cl3', 'web')).toEqual([vip]);
    expect((await ok(lab.ctagent('h3', 'exec', 'cl3', '--', 'getent', 'hosts', 'web'))).split(/\s+/)[0]).toBe(vip);
    expect(sorted(await short('h3', 'cl3', 'tasks.web'))).toEqual(runningIps(v));
    const t1 = v.tasks[0]!;
    expect(await short('h3', 'cl3', t1.name)).toEqual(t1.ips);
    expect((await ok(dig('h3', 'cl3', '+short', '-x', t1.ips[0]!))).trim()).toBe(`${t1.name}.app.`);
    // Docker-style resolver address inside the sandbox, over UDP and TCP
    expect((await ok(dig('h3', 'cl3', '@127.0.0.11', '+short', 'web'))).trim()).toBe(vip);
    expect((await ok(dig('h3', 'cl3', '@127.0.0.11', '+tcp', '+short', 'tasks.web'))).trim().split('\n').sort()).toEqual(runningIps(v));
  });

  it('dnsrr mode returns every running task in rotating order; a service only on another network is NXDOMAIN', async () => {
    await ok(lab.ctmgr('service', 'create', '--name', 'rr', '--network', 'app', '--replicas', '3', '--endpoint-mode', 'dnsrr', '--', 'sleep', 'infinity'));
    const v = await inspect('rr');
    expect(v.vips).toEqual([]);
    const first = await short('h3', 'cl3', 'rr');
    expect(sorted(first)).toEqual(runningIps(v));
    const second = await short('h3', 'cl3', 'rr');
    expect(sorted(second)).toEqual(sorted(first));
    expect(second).not.toEqual(first); // rotated
    await ok(lab.ctmgr('service', 'create', '--name', 'hidden', '--network', 'other', '--replicas', '1', '--', 'sleep', 'infinity'));
    expect(await ok(dig('h3', 'cl3', 'hidden'))).toMatch(/status: NXDOMAIN/);
    expect(await ok(dig('h3', 'cl3', 'tasks.hidden'))).toMatch(/status: NXDOMAIN/);
  });

  it('scale 3 -> 6 -> 2: after each step every host answers exactly the running tasks', async () => {
    for (const n of [6, 2]) {
      const out = await ok(lab.ctmgr('service', 'scale', `rr=${n}`));
      expect(out).toMatch(new RegExp(`rr: tasks running ${n}/${n}, hosts converged 3/3`));
      const v = await inspect('rr');
      expect(v.tasks.filter((t) => t.desired === 'running')).toHaveLength(n);
      expect(v.tasks).toHaveLength(n); // retired tasks are gone once converged
      const want = runningIps(v);
      expect(want).toHaveLength(n);
      for (const [h, c] of [['h1', 'cl1'], ['h2', 'cl2'], ['h3', 'cl3']] as const) {
        expect(sorted(await short(h, c, 'tasks.rr'))).toEqual(want);
        expect(sorted(await short(h, c, 'rr'))).toEqual(want);
      }
    }
  });

  it('a killed task restarts in place; DNS never answers an address that is not a task, and withdraws it while down', async () => {
    const before = await inspect('web');
    const victim = before.tasks.find((t) => t.node === 'h1')!;
    const ip = victim.ips[0]!;
    const pid = (await ok(lab.ctagent('h1', 'ps'))).split('\n').find((l) => l.startsWith(`${victim.name} `))!.trim().split(/\s+/)[2]!;
    // Poll tasks.web from h3 every 20 ms while the process is killed and restarted. The
    // poller marks a file after its first round: the kill waits for it, since starting the
    // poller can take longer than any fixed pause on a loaded machine.
    const ready = join(lab.workDir, 'poll-started');
    const poll = lab.ctagent('h3', 'exec', 'cl3', '--', 'sh', '-c', `for i in $(seq 150); do dig +short +time=1 +tries=1 tasks.web; echo --; [ "$i" = 1 ] && touch ${ready}; sleep 0.02; done`);
    await waitUntil(async () => existsSync(ready), 30_000);
    await ok(lab.exec('h1', 'kill', '-9', pid));
    const rounds = (await ok(poll)).split('--\n').map((b) => b.split('\n').map((l) => l.trim()).filter(Boolean));
    const known = new Set(before.tasks.flatMap((t) => t.ips));
    for (const r of rounds) for (const a of r) expect(known.has(a), `answer ${a} is no task of web`).toBe(true);
    const without = rounds.findIndex((r) => r.length > 0 && !r.includes(ip));
    expect(without, 'the killed task was withdrawn while down').toBeGreaterThan(0);
    expect(rounds.slice(without).some((r) => r.includes(ip)), 'and came back after the restart').toBe(true);
    await waitUntil(async () => (await inspect('web')).tasks.find((t) => t.name === victim.name)?.state === 'running', 10_000);
    const after = (await inspect('web')).tasks.find((t) => t.name === victim.name)!;
    expect(after.restarts).toBe(1);
    expect(after.ips).toEqual([ip]);
  });

  it('refuses bad input with the problem named, and says why tasks wait', async () => {
    const bad = async (args: string[], pattern: RegExp) => {
      const r = await lab.ctmgr('service', ...args);
      expect(r.code, r.stdout).not.toBe(0);
      expect(r.stderr).toMatch(pattern);
    };
    await bad(['create', '--name', 'x1', '--network', 'nope', '--', 'sleep', '1'], /network nope not found/);
    await bad(['create', '--name', 'x2', '--network', 'app', '--replicas=-1', '--', 'sleep', '1'], /cannot be negative/);
    await bad(['create', '--name', 'cl1', '--network', 'app', '--', 'sleep', '1'], /container cl1 on network app already answers to the name cl1/);
    await bad(['create', '--name', 'web', '--network', 'app', '--', 'sleep', '1'], /service named web already exists/);
    await bad(['create', '--name', 'x3', '--network', 'app', '--constraint', 'node.color=red', '--', 'sleep', '1'], /constraint "node.color=red" is not understood/);
    const r = await lab.ctmgr('run', '-d', '--name', 'rr', '--network', 'app', '--', 'sleep', '1');
    expect(r.stderr).toMatch(/a service named rr is on network app/);
    await ok(lab.ctmgr('service', 'create', '-d', '--name', 'nowhere', '--network', 'app', '--constraint', 'node.labels.zone==mars', '--', 'sleep', 'infinity'));
    await waitUntil(async () => (await inspect('nowhere')).pending !== '', 10_000);
    expect((await inspect('nowhere')).pending).toMatch(/no ready node satisfies "node.labels.zone==mars"/);
    const wait = await lab.ctmgr('service', 'scale', '--timeout', '1', 'nowhere=2');
    expect(wait.code).toBe(1);
    expect(wait.stderr).toMatch(/did not converge within 1 s: .*no ready node satisfies/);
  });

  it('service rm withdraws the name everywhere and frees the addresses', async () => {
    const v = await inspect('web');
    await ok(lab.ctmgr('service', 'rm', 'web'));
    // Gone names are nobody's: forwarded upstream (there is none here), never answered from the cluster.
    const answered = async (h: string, c: string, name: string) => /^\d+\.\d+\.\d+\.\d+$/m.test((await dig(h, c, '+short', name)).stdout);
    for (const [h, c] of [['h1', 'cl1'], ['h2', 'cl2'], ['h3', 'cl3']] as const) {
      await waitUntil(async () => !(await answered(h, c, 'web')), 10_000);
      expect(await answered(h, c, 'tasks.web')).toBe(false);
    }
    await waitUntil(async () => !(await ok(lab.ctmgr('ps'))).includes('web.'), 10_000);
    const usage = await ok(lab.ctmgr('network', 'inspect', 'app', '--format', 'json'));
    for (const ip of [...v.tasks.flatMap((t) => t.ips), v.vips[0]!.ip]) expect(usage).not.toContain(`"${ip}"`);
  });

  it('a host that goes down: its tasks leave DNS at once, and are rescheduled elsewhere after the grace period', async () => {
    await ok(lab.ctmgr('service', 'create', '--name', 'rs', '--network', 'app', '--replicas', '2', '--endpoint-mode', 'dnsrr', '--constraint', 'node.name!=h3', '--', 'sleep', 'infinity'));
    const v = await inspect('rs');
    const lost = v.tasks.find((t) => t.node === 'h2')!;
    expect(sorted(await short('h3', 'cl3', 'tasks.rs'))).toEqual(runningIps(v));
    await lab.stopAgent('h2', 'SIGKILL');
    await lab.setLinkDown('h2');
    // the lease runs out (node TTL 3 s): the task turns "unknown" and leaves every answer
    await waitUntil(async () => !(await short('h3', 'cl3', 'tasks.rs')).includes(lost.ips[0]!), 15_000);
    expect((await inspect('rs')).tasks.find((t) => t.name === lost.name)?.state).toBe('unknown');
    // after the grace period (10 s in the lab) its slot is filled on h1, the only other eligible node
    await waitUntil(async () => {
      const now = await inspect('rs');
      return now.running === 2 && now.tasks.every((t) => t.node === 'h1');
    }, 30_000);
    expect(sorted(await short('h3', 'cl3', 'tasks.rs'))).toEqual(runningIps(await inspect('rs')));
  }, 60_000);
});
