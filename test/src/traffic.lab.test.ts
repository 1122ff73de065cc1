import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailableReason, REPO, startLab, type Lab } from './lab/lab.js';
import { waitUntil, ok } from './harness.js';

// Traffic policy across 3 hosts, all through the kernel: VIP balancing in every sandbox,
// published ports (-p) with hairpin, the routing mesh and host-mode publishing, egress and
// --internal, isolation between networks, legacy links, and drift repair of the nft tables.
const reason = labUnavailableReason();
let lab: Lab;

const WHOAMI = join(REPO, 'test/src/lab/fixtures/tcp-whoami.mjs');
const PROBE = join(REPO, 'test/src/lab/fixtures/tcp-probe.mjs');
const NODE = process.execPath;

interface Probe {
  answers: string[];
  errors: string[];
}
/** COUNT connections from a sandbox (host, container) or a lab node (host only) to ADDR:PORT. */
const probe = async (where: { host: string; sandbox?: string }, addr: string, port: number, count: number, timeoutMs = 1500): Promise<Probe> => {
  const cmd = [NODE, PROBE, 'once', addr, String(port), String(count), String(timeoutMs)];
  const r = where.sandbox ? await lab.ctagent(where.host, 'exec', where.sandbox, '--', ...cmd) : await lab.exec(where.host, ...cmd);
  if (r.code !== 0) throw new Error(`probe exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Probe;
};
const hostnames = (p: Probe) => new Set(p.answers.map((a) => a.split(' ')[0]));
interface ServiceView {
  vips: { network: string; ip: string }[];
  tasks: { name: string; node: string; state: string; desired: string; ips: string[]; hostname?: string }[];
}
const inspectService = async (name: string) => JSON.parse(await ok(lab.ctmgr('service', 'inspect', name))) as ServiceView;
const containerIp = async (name: string) => {
  const [c] = JSON.parse(await ok(lab.ctmgr('inspect', name))) as { endpoints: { ip: string }[]; hostname: string }[];
  return c!.endpoints[0]!.ip;
};
const runWhoami = (name: string, node: string, network: string, ...flags: string[]) =>
  ok(lab.ctmgr('run', '-d', '--name', name, '--network', network, '--node', node, ...flags, '--', NODE, WHOAMI, '8080', '80'));
const waitRunning = (name: string) =>
  waitUntil(async () => {
    const [c] = JSON.parse((await lab.ctmgr('inspect', name)).stdout || '[{}]') as { status?: { state: string } }[];
    return c?.status?.state === 'running';
  }, 20_000, () => lab.logs(20));
/** Until the server in the sandbox listens (node takes a moment to start). */
const waitAnswer = (where: { host: string; sandbox?: string }, addr: string, port: number) =>
  waitUntil(async () => (await probe(where, addr, port, 1, 500)).answers.length === 1, 20_000, () => lab.logs(20));

describe.skipIf(reason !== undefined)(`traffic policy${reason ? ` (skipped: ${reason})` : ''}`, () => {
  const addr = (h: string) => lab.hosts.find((x) => x.name === h)!.addr;
  beforeAll(async () => {
    lab = await startLab({ hosts: 3, agents: true, resyncSeconds: 3 });
    await waitUntil(async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length === 3, 30_000);
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.80.0.0/24', 'app'));
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.81.0.0/24', 'other'));
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.82.0.0/24', '--internal', 'secret'));
    await ok(lab.ctmgr('run', '-d', '--name', 'cl2', '--network', 'app', '--node', 'h2', '--', 'sleep', 'infinity'));
  }, 90_000);
  afterAll(async () => {
    await lab?.destroy();
  });

  it('a VIP spreads connections over the tasks on h1, h2 and h3; scaled to 1 all reach it; at 0 it refuses at once', async () => {
    await ok(lab.ctmgr('service', 'create', '--name', 'lb', '--network', 'app', '--replicas', '3', '--', NODE, WHOAMI, '8080'));
    const v = await inspectService('lb');
    expect(new Set(v.tasks.map((t) => t.node))).toEqual(new Set(['h1', 'h2', 'h3']));
    const vip = v.vips[0]!.ip;
    await waitUntil(async () => hostnames(await probe({ host: 'h2', sandbox: 'cl2' }, vip, 8080, 6)).size === 3, 20_000, () => lab.logs(20));
    const p = await probe({ host: 'h2', sandbox: 'cl2' }, vip, 8080, 30);
    expect(p.errors).toEqual([]);
    expect(p.answers).toHaveLength(30);
    const seen = new Map<string, number>();
    for (const h of p.answers.map((a) => a.split(' ')[0]!)) seen.set(h, (seen.get(h) ?? 0) + 1);
    expect(seen.size).toBe(3);
    for (const n of seen.values()) expect(n).toBe(10); // round robin
    // the task sees the client's own address: no NAT on any host
    const cl2 = await containerIp('cl2');
    expect(new Set(p.answers.map((a) => a.split(' ')[1]))).toEqual(new Set([cl2]));

    await ok(lab.ctmgr('service', 'scale', 'lb=1'));
    const one = await probe({ host: 'h2', sandbox: 'cl2' }, vip, 8080, 30);
    expect(one.errors).toEqual([]);
    expect(hostnames(one).size).toBe(1);

    await ok(lab.ctmgr('service', 'scale', 'lb=0'));
    const none = await probe({ host: 'h2', sandbox: 'cl2' }, vip, 8080, 3, 3000);
    expect(none.answers).toEqual([]);
    for (const e of none.errors) expect(e).toMatch(/^ECONNREFUSED after \d+ ms$/);
    expect(Math.max(...none.errors.map((e) => Number(/after (\d+)/.exec(e)![1])))).toBeLessThan(500);
  });

  it('-p 8080:80 on h1 is reached through h1\'s underlay address from another namespace, keeping the client address; hairpin too', async () => {
    await runWhoami('pub', 'h1', 'app', '-p', '8080:80', '-p', '8080');
    await waitRunning('pub');
    const ports = (await ok(lab.ctmgr('port', 'pub'))).trim().split('\n');
    expect(ports[0]).toBe('80/tcp -> 0.0.0.0:8080');
    expect(ports[1]).toMatch(/^8080\/tcp -> 0\.0\.0\.0:(\d+)$/);
    const chosen = Number(/:(\d+)$/.exec(ports[1]!)![1]);
    expect(chosen).toBeGreaterThanOrEqual(32768);
    expect((await ok(lab.ctmgr('port', 'pub', '80'))).trim()).toBe('0.0.0.0:8080');
    await waitAnswer({ host: 'm' }, addr('h1'), 8080);
    const p = await probe({ host: 'm' }, addr('h1'), 8080, 3);
    expect(p.errors).toEqual([]);
    expect(p.answers[0]!.split(' ')[1]).toBe(lab.manager.addr); // the client's address is kept
    expect((await probe({ host: 'h3' }, addr('h1'), chosen, 1)).answers).toHaveLength(1);
    // not on another node
    expect((await probe({ host: 'm' }, addr('h2'), 8080, 1, 1000)).answers).toEqual([]);
    // hairpin: the host itself, and a sandbox on h1, through h1's own address
    expect((await probe({ host: 'h1' }, addr('h1'), 8080, 1)).answers).toHaveLength(1);
    await ok(lab.ctmgr('run', '-d', '--name', 'cl1', '--network', 'app', '--node', 'h1', '--', 'sleep', 'infinity'));
    await waitRunning('cl1');
    const hp = await probe({ host: 'h1', sandbox: 'cl1' }, addr('h1'), 8080, 2);
    expect(hp.errors).toEqual([]);
    expect(hp.answers).toHaveLength(2);
    // a taken port is refused, naming its holder
    const taken = await lab.ctmgr('run', '-d', '--name', 'pub2', '--network', 'app', '--node', 'h1', '-p', '8080:80', '--', 'sleep', 'infinity');
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toMatch(/port 0\.0\.0\.0:8080\/tcp on node h1 is already published by container pub/);
    expect((await lab.ctmgr('inspect', 'pub2')).code).not.toBe(0); // nothing recorded
    // the same port on another node is fine
    await ok(lab.ctmgr('run', '-d', '--name', 'pub3', '--network', 'app', '--node', 'h2', '-p', '8080:80', '--', 'sleep', 'infinity'));
    // a port a process of the host already listens on is left to it, and the container says who holds it
    void lab.exec('h1', NODE, WHOAMI, '8081');
    await waitAnswer({ host: 'm' }, addr('h1'), 8081);
    await runWhoami('held', 'h1', 'app', '-p', '8081:80');
    await waitUntil(async () => /held by node \(pid \d+\)/.test((await lab.ctmgr('inspect', 'held')).stdout), 20_000, () => lab.logs(20));
    expect((await ok(lab.ctmgr('inspect', 'held')))).toContain('port 8081/tcp on node h1 is held by node (pid');
    const answer = (await probe({ host: 'm' }, addr('h1'), 8081, 1)).answers[0]!;
    expect(answer.split(' ')[0]).not.toBe('held'); // still the host's process
    await lab.exec('h1', 'sh', '-c', `pkill -f "${WHOAMI} 8081" || true`);
  });

  it('ingress mode answers on every host, also those without a task; host mode only where a task runs', async () => {
    await ok(lab.ctmgr('service', 'create', '--name', 'mesh', '--network', 'app', '--replicas', '2', '--constraint', 'node.name!=h3',
      '--publish', 'published=30080,target=8080', '--', NODE, WHOAMI, '8080'));
    const v = await inspectService('mesh');
    expect(new Set(v.tasks.map((t) => t.node))).toEqual(new Set(['h1', 'h2']));
    for (const h of ['h1', 'h2', 'h3']) {
      await waitAnswer({ host: 'm' }, addr(h), 30080);
      const p = await probe({ host: 'm' }, addr(h), 30080, 4);
      expect(p.errors, `through ${h}`).toEqual([]);
      expect(hostnames(p).size, `through ${h}: both tasks`).toBe(2);
      // Swarm's ingress: the task sees the node that forwarded it
      expect(new Set(p.answers.map((a) => a.split(' ')[1]))).toEqual(new Set([addr(h)]));
    }
    await ok(lab.ctmgr('service', 'create', '--name', 'hm', '--network', 'app', '--replicas', '1', '--constraint', 'node.name==h2',
      '--publish', 'published=30090,target=8080,mode=host', '--', NODE, WHOAMI, '8080'));
    await waitAnswer({ host: 'm' }, addr('h2'), 30090);
    for (const h of ['h1', 'h3']) {
      const p = await probe({ host: 'm' }, addr(h), 30090, 1, 1000);
      expect(p.answers, `host mode on ${h}`).toEqual([]);
      expect(p.errors[0]).toMatch(/ECONNREFUSED/);
    }
    // bad input, as Docker/Swarm words it
    const twice = await lab.ctmgr('service', 'create', '--name', 'dup', '--network', 'app', '--publish', 'published=30080,target=80', '--', 'sleep', 'infinity');
    expect(twice.code).not.toBe(0);
    expect(twice.stderr).toMatch(/port 30080\/tcp is already published by service mesh/);
    const held = await lab.ctmgr('service', 'create', '--name', 'dup', '--network', 'app', '--publish', '8080:80', '--', 'sleep', 'infinity');
    expect(held.stderr).toMatch(/port 8080\/tcp is already published by container pub/);
    for (const [spec, why] of [
      ['published=1,target=x', 'invalid target port'],
      ['published=1,mode=bridge,target=2', 'must be either "ingress" or "host"'],
      ['published=1', 'missing mandatory field "target"'],
      ['published=99999,target=80', 'invalid published port'],
      ['80:80/sctp', 'invalid protocol'],
    ] as const) {
      const r = await lab.ctmgr('service', 'create', '--name', 'bad', '--network', 'app', '--publish', spec, '--', 'sleep', 'infinity');
      expect(r.code, spec).not.toBe(0);
      expect(r.stderr).toContain(why);
    }
  });

  it('egress: a normal network reaches a server on the underlay (masqueraded); an --internal one cannot', async () => {
    const server = lab.exec('h3', NODE, WHOAMI, '7070'); // on h3's underlay address, outside every overlay
    void server;
    await waitAnswer({ host: 'h2' }, addr('h3'), 7070);
    const out = await probe({ host: 'h2', sandbox: 'cl2' }, addr('h3'), 7070, 1);
    expect(out.answers[0]!.split(' ')[1]).toBe(addr('h2'));
    await ok(lab.ctmgr('run', '-d', '--name', 'shut', '--network', 'secret', '--node', 'h2', '--', 'sleep', 'infinity'));
    await waitRunning('shut');
    const blocked = await probe({ host: 'h2', sandbox: 'shut' }, addr('h3'), 7070, 1, 1000);
    expect(blocked.answers).toEqual([]);
    // nor the host itself (only DNS)
    expect((await probe({ host: 'h2', sandbox: 'shut' }, addr('h2'), 8080, 1, 1000)).answers).toEqual([]);
    const dns = await lab.ctagent('h2', 'exec', 'shut', '--', 'dig', '+short', '+time=2', '+tries=1', 'shut');
    expect(dns.stdout.trim()).toMatch(/^10\.82\.0\.\d+$/);
    await lab.exec('h3', 'sh', '-c', `pkill -f "${WHOAMI} 7070" || true`);
  });

  it('sandboxes on different networks cannot connect; one connected to both reaches both', async () => {
    await runWhoami('srv-a', 'h1', 'app');
    await runWhoami('srv-b', 'h1', 'other');
    await ok(lab.ctmgr('run', '-d', '--name', 'cl-b', '--network', 'other', '--node', 'h1', '--', 'sleep', 'infinity'));
    await ok(lab.ctmgr('run', '-d', '--name', 'both', '--network', 'app', '--node', 'h1', '--', 'sleep', 'infinity'));
    await ok(lab.ctmgr('network', 'connect', 'other', 'both'));
    for (const n of ['srv-a', 'srv-b', 'cl-b', 'both']) await waitRunning(n);
    const a = await containerIp('srv-a');
    const b = await containerIp('srv-b');
    await waitAnswer({ host: 'h1', sandbox: 'cl-b' }, b, 8080);
    expect((await probe({ host: 'h1', sandbox: 'cl-b' }, a, 8080, 1, 1000)).answers).toEqual([]); // other -> app, same host
    expect((await probe({ host: 'h2', sandbox: 'cl2' }, b, 8080, 1, 1000)).answers).toEqual([]); // app -> other, across hosts
    await waitAnswer({ host: 'h1', sandbox: 'both' }, a, 8080);
    await waitAnswer({ host: 'h1', sandbox: 'both' }, b, 8080);
  });

  it('--link gives the Docker variables and an /etc/hosts entry; a link to an unknown or stopped container is refused', async () => {
    await runWhoami('db', 'h2', 'app', '--expose', '5432', '--expose', '53/udp', '-e', 'POSTGRES_DB=shop');
    await waitRunning('db');
    const dbIp = await containerIp('db');
    await ok(lab.ctmgr('run', '-d', '--name', 'web-linked', '--network', 'app', '--node', 'h2', '--link', 'db:database', '--',
      'sh', '-c', 'env | grep ^DATABASE_ | sort; grep database /etc/hosts; sleep infinity'));
    await waitUntil(async () => (await lab.ctmgr('logs', 'web-linked')).stdout.includes('\tdatabase'), 20_000, () => lab.logs(20));
    const logs = (await ok(lab.ctmgr('logs', 'web-linked'))).split('\n');
    for (const line of [
      'DATABASE_NAME=/web-linked/database',
      `DATABASE_PORT=udp://${dbIp}:53`, // the lowest exposed port
      `DATABASE_PORT_5432_TCP=tcp://${dbIp}:5432`,
      `DATABASE_PORT_5432_TCP_ADDR=${dbIp}`,
      'DATABASE_PORT_5432_TCP_PORT=5432',
      'DATABASE_PORT_5432_TCP_PROTO=tcp',
      `DATABASE_PORT_53_UDP_ADDR=${dbIp}`,
      'DATABASE_PORT_53_UDP_PROTO=udp',
      'DATABASE_ENV_POSTGRES_DB=shop',
      `${dbIp}\tdatabase db`,
    ]) {
      expect(logs, line).toContain(line);
    }
    const unknown = await lab.ctmgr('run', '-d', '--name', 'x1', '--network', 'app', '--link', 'nobody:n', '--', 'sleep', '1');
    expect(unknown.stderr).toMatch(/--link nobody: no container named nobody/);
    await ok(lab.ctmgr('run', '-d', '--name', 'quitter', '--network', 'app', '--node', 'h2', '--', 'true'));
    await waitUntil(async () => /"state": "exited"/.test((await lab.ctmgr('inspect', 'quitter')).stdout), 20_000);
    const stopped = await lab.ctmgr('run', '-d', '--name', 'x2', '--network', 'app', '--link', 'quitter', '--', 'sleep', '1');
    expect(stopped.stderr).toMatch(/container quitter is not running \(exited\)/);
  });

  it('the ctnet tables deleted by hand are back at the next resync; an agent restart keeps a VIP connection alive', async () => {
    const h1 = lab.hosts[0]!;
    await ok(lab.exec('h1', 'nft', 'delete', 'table', 'ip', 'ctnet'));
    await waitUntil(async () => (await lab.exec('h1', 'nft', 'list', 'table', 'ip', 'ctnet')).code === 0, 15_000, () => lab.logs(20));
    const sb = (await ok(lab.ctagent('h1', 'ps'))).split('\n').find((l) => l.startsWith('cl1 '))!.trim().split(/\s+/)[1]!;
    await ok(lab.execIn(sb, 'nft', 'delete', 'table', 'ip', 'ctnet'));
    await waitUntil(async () => (await lab.execIn(sb, 'nft', 'list', 'table', 'ip', 'ctnet')).code === 0, 15_000, () => lab.logs(20));
    // counted as drift (the log line follows the repair by a moment)
    await waitUntil(async () => /repaired drift in the host nftables table/.test(lab.agentLog(h1)), 5000);
    await waitUntil(async () => /repaired drift in sandbox nftables tables/.test(lab.agentLog(h1)), 5000, () => lab.agentLog(h1));

    await ok(lab.ctmgr('service', 'scale', 'lb=2'));
    const vip = (await inspectService('lb')).vips[0]!.ip;
    await waitAnswer({ host: 'h2', sandbox: 'cl2' }, vip, 8080);
    const hold = lab.ctagent('h2', 'exec', 'cl2', '--', NODE, PROBE, 'hold', vip, '8080', '4');
    await new Promise((r) => setTimeout(r, 800));
    await lab.stopAgent('h2', 'SIGKILL');
    lab.startAgent('h2');
    const held = JSON.parse(await ok(hold)) as { sent: number; echoed: number; error: string };
    expect(held.error).toBe('');
    expect(held.echoed).toBe(held.sent);
    expect(held.sent).toBeGreaterThan(30);
  });

  it('regression: an agent turns IPv4 forwarding on with the first state it applies, not at its first resync', async () => {
    // Published ports, the mesh and egress all stand on forwarding; it used to be set only
    // by a resync, so a fresh host forwarded nothing for up to --resync-interval.
    const forwarding = async () => (await ok(lab.exec('h3', 'cat', '/proc/sys/net/ipv4/ip_forward'))).trim();
    await lab.stopAgent('h3');
    await ok(lab.exec('h3', 'sh', '-c', 'echo 0 > /proc/sys/net/ipv4/ip_forward'));
    expect(await forwarding()).toBe('0');
    lab.startAgent('h3', ['--resync-interval', '1h']);
    try {
      await waitUntil(async () => (await forwarding()) === '1', 20_000, () => lab.agentLog('h3'));
    } finally {
      await lab.stopAgent('h3');
      lab.startAgent('h3');
    }
  });
});
