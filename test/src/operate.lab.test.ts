import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailableReason, startLab, type Lab } from './lab/lab.js';
import { spawnLogged, type LabProcess } from './lab/process.js';
import { KIT, kitQueries } from './lab/prometheus-kit.js';
import { waitUntil, ok } from './harness.js';

// Operating a cluster on a real three-host lab: `ctagent diag` and `ctmgr node diag`, and the
// Prometheus kit (deploy/prometheus, deploy/grafana) against a real Prometheus scraping the
// lab's manager and agents.
const reason = labUnavailableReason();
let lab: Lab;
const NETNS_EXEC = join(import.meta.dirname, 'lab', 'netns-exec.sh');
const PROMETHEUS = '/usr/bin/prometheus';

interface Diagnosis {
  node: string;
  ok: boolean;
  manager: string;
  revision: { state: number; applied: number };
  lastReconcile: { error?: string } | null;
  networks: {
    network: string;
    devices: { name: string; kind: string; state: string }[];
    fdb?: { desired: number; present: number; missing: string[] };
    neigh?: { desired: number; present: number; missing: string[] };
    sandboxes: { name: string; present: boolean }[];
  }[];
  nftables: { netns: string; inSync: boolean; hash: string }[];
  pending: string[];
}
const json = async <T>(p: Promise<{ code: number; stdout: string; stderr: string }>): Promise<T> => JSON.parse(await ok(p)) as T;
const run = async (name: string, node: string) => {
  await ok(lab.ctmgr('run', '-d', '--name', name, '--network', 'app', '--node', node, '--', 'sleep', 'infinity'));
  const [c] = await json<{ endpoints: { ip: string; mac: string }[] }[]>(lab.ctmgr('inspect', name));
  return { ip: c!.endpoints[0]!.ip, mac: c!.endpoints[0]!.mac };
};
const reachable = async (host: string, sandbox: string, ip: string) => (await lab.ctagent(host, 'exec', sandbox, '--', 'ping', '-c1', '-W1', ip)).code === 0;

let c1: { ip: string; mac: string };
let c3: { ip: string; mac: string };

// One lab for the whole file (each describe uses it; it goes when the file is done).
beforeAll(async () => {
  if (reason !== undefined) return;
  // No periodic resync in this lab: drift made by hand stays until a test repairs it, so
  // what diag reports is not raced by a repair.
  // Agents serve /metrics on their underlay address, for the Prometheus in the manager's
  // namespace; the Docker plugin socket is served (no dockerd: its calls are made below).
  lab = await startLab({ hosts: 3, agents: true, resyncSeconds: 3600, docker: true, agentArgs: ['--http', '0.0.0.0:4702'] });
  await waitUntil(async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length === 3, 30_000, () => lab.logs(20));
  await ok(lab.ctmgr('network', 'create', '--subnet', '10.30.0.0/24', 'app'));
  c1 = await run('c1', 'h1');
  c3 = await run('c3', 'h3');
  await waitUntil(() => reachable('h1', 'c1', c3.ip), 20_000, () => lab.logs(30));
}, 120_000);
afterAll(async () => lab?.destroy());

describe.skipIf(reason !== undefined)(`operating a cluster${reason ? ` (skipped: ${reason})` : ''}`, () => {
  it('ctagent diag and ctmgr node diag show a converged host, per network', async () => {
    const local = await json<Diagnosis>(lab.ctagent('h1', 'diag', '--format', 'json'));
    expect(local.ok).toBe(true);
    expect(local.node).toBe('h1');
    expect(local.manager).not.toBe('');
    expect(local.pending).toEqual([]);
    const app = local.networks.find((n) => n.network === 'app')!;
    expect(app.devices.map((d) => [d.kind, d.state])).toEqual([['bridge', 'ok'], ['vxlan', 'ok']]);
    expect(app.fdb).toEqual({ desired: 1, present: 1, missing: [], unexpected: [], unexpectedCount: 0 });
    expect(app.neigh).toEqual({ desired: 1, present: 1, missing: [], unexpected: [], unexpectedCount: 0 });
    expect(app.sandboxes).toEqual([{ name: 'c1', netns: expect.any(String), present: true }]);
    expect(local.nftables.length).toBeGreaterThanOrEqual(2); // the host's table and c1's
    expect(local.nftables.every((t) => t.inSync)).toBe(true);

    const remote = await json<Diagnosis>(lab.ctmgr('node', 'diag', 'h1', '--format', 'json'));
    expect(remote.networks).toEqual(local.networks);
    const text = await ok(lab.ctmgr('node', 'diag', 'h1'));
    expect(text).toMatch(/^node h1: OK/);
    expect(text).toMatch(/network app \(/);
    expect(text).toContain('fdb     1/1 present');
  });

  it('names the entries, the device and the rules changed by hand, then shows the repair', async () => {
    const vx = (await json<Diagnosis>(lab.ctagent('h1', 'diag', '--format', 'json'))).networks[0]!.devices[1]!.name;
    await ok(lab.exec('h1', 'bridge', 'fdb', 'del', c3.mac, 'dev', vx, 'dst', lab.hosts[2]!.addr, 'self'));
    await ok(lab.exec('h1', 'ip', 'neigh', 'del', c3.ip, 'dev', vx));
    await ok(lab.exec('h1', 'nft', 'flush', 'table', 'ip', 'ctnet'));
    const text = await ok(lab.ctmgr('node', 'diag', 'h1'));
    expect(text).toMatch(/^node h1: NOT CONVERGED/);
    expect(text).toContain(`fdb     0/1 present; missing 1: ${c3.mac} -> ${lab.hosts[2]!.addr}`);
    expect(text).toContain(`neigh   0/1 present; missing 1: ${c3.ip} -> ${c3.mac}`);
    expect(text).toMatch(/nftables: host ctnet [0-9a-f]{8} DIFFERS/);
    expect(text).toMatch(/pending kernel changes: 2: fdb-replace/);

    // diag changed nothing: the entries are still gone until the agent repairs them. A
    // restart reads the kernel back at once and repairs everything diag named.
    expect(await ok(lab.exec('h1', 'bridge', 'fdb', 'show', 'dev', vx))).not.toContain(`${c3.mac} dst`);
    await lab.stopAgent('h1');
    lab.startAgent('h1');
    await waitUntil(async () => (await lab.ctagent('h1', 'diag', '--format', 'json').then((r) => (r.code === 0 ? (JSON.parse(r.stdout) as Diagnosis).ok : false))), 30_000, () => lab.logs(20));
    expect(await reachable('h1', 'c1', c3.ip)).toBe(true);
  });

  it('says why when a node cannot be asked', async () => {
    const missing = await lab.ctmgr('node', 'diag', 'nosuch');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/node nosuch not found; list nodes with "ctmgr node ls"/);
    await lab.stopAgent('h2');
    const down = await lab.ctmgr('node', 'diag', 'h2');
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/the agent of node h2 is not connected to this manager.*ctagent diag/);
    const local = await lab.ctagent('h2', 'diag');
    expect(local.code).toBe(1);
    expect(local.stderr).toMatch(/no agent answers on .*control\.sock: ctagent is not running/);
    lab.startAgent('h2');
  });
});

/** One call of Docker's plugin protocol on a host's plugin socket, as dockerd makes it. */
const pluginCall = (host: string, path: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const req = request({ socketPath: join(lab.workDir, host, 'docker', 'plugins', 'ctnet.sock'), path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end('{}');
  });

describe.skipIf(reason !== undefined || !existsSync(PROMETHEUS))(
  `the Prometheus kit on a live cluster${reason ? ` (skipped: ${reason})` : !existsSync(PROMETHEUS) ? ' (skipped: no /usr/bin/prometheus; deploy/setup.sh installs it)' : ''}`,
  () => {
    let prometheus: LabProcess | undefined;
    const promPort = 9090; // in the manager's namespace: its own loopback
    afterAll(async () => {
      await prometheus?.stop('SIGTERM', 10_000);
    });

    it('every dashboard query and every alert expression returns data from the lab', async () => {
      // What the dashboard and the rules look at: a vip service, DNS answered here, forwarded
      // and failing (a client whose --dns is its own loopback, where nothing listens: nothing
      // leaves the lab), and calls of the Docker plugin.
      await ok(lab.ctmgr('service', 'create', '--name', 'web', '--network', 'app', '--replicas', '2', '--', 'sleep', 'infinity'));
      await ok(lab.ctmgr('run', '-d', '--name', 'asker', '--network', 'app', '--node', 'h2', '--dns', '127.0.0.1', '--', 'sleep', 'infinity'));
      await waitUntil(async () => (await lab.ctagent('h2', 'exec', 'asker', '--', 'dig', '+short', '+time=1', '+tries=1', 'web')).stdout.trim() !== '', 20_000, () => lab.logs(20));
      for (const name of ['web', 'tasks.web', 'c1', 'nosuch', 'example.invalid']) {
        await lab.ctagent('h2', 'exec', 'asker', '--', 'dig', '+time=3', '+tries=1', name);
      }
      expect(await pluginCall('h1', '/Plugin.Activate')).toContain('NetworkDriver');
      expect(await pluginCall('h1', '/NetworkDriver.GetCapabilities')).toContain('Scope');

      const dir = join(lab.workDir, 'prometheus');
      mkdirSync(dir, { recursive: true });
      const config = join(dir, 'prometheus.yml');
      writeFileSync(
        config,
        [
          'global: { scrape_interval: 1s, evaluation_interval: 1s }',
          `rule_files: ['${KIT.rules}']`,
          'scrape_configs:',
          "  - job_name: ctnet-manager",
          "    static_configs: [{ targets: ['127.0.0.1:4701'] }]",
          '  - job_name: ctnet-agent',
          `    static_configs: [{ targets: [${lab.hosts.map((h) => `'${h.addr}:4702'`).join(', ')}] }]`,
          '',
        ].join('\n'),
      );
      // `timeout`: it stops by itself even if this test process dies before afterAll.
      prometheus = spawnLogged(
        'prometheus',
        [NETNS_EXEC, lab.manager.ns, 'timeout', '600', PROMETHEUS, `--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`],
        join(lab.workDir, 'prometheus.log'),
        process.env,
      );
      const series = async (expr: string): Promise<number> => {
        const r = await lab.execIn(lab.manager.ns, 'promtool', 'query', 'instant', '-o', 'json', `http://127.0.0.1:${promPort}`, expr);
        if (r.code !== 0) return -1;
        return (JSON.parse(r.stdout) as unknown[]).length;
      };
      await waitUntil(async () => (await series('up{job=~"ctnet-.*"} == 1')) === 4, 60_000, () => lab.logs(10));

      const queries = kitQueries();
      expect(queries.filter((q) => q.source === 'alert').length).toBeGreaterThanOrEqual(8);
      expect(queries.filter((q) => q.source === 'dashboard').length).toBeGreaterThanOrEqual(10);
      const empty = new Set(queries.map((q) => q.id));
      // Rates need two scrapes in their window: wait until every query has data, or name the ones that never did.
      await waitUntil(
        async () => {
          for (const q of queries) if (empty.has(q.id) && (await series(q.data)) > 0) empty.delete(q.id);
          return empty.size === 0;
        },
        90_000,
      ).catch(() => undefined);
      expect([...empty].map((id) => `${id}: ${queries.find((q) => q.id === id)!.data}`)).toEqual([]);

      // A healthy cluster fires nothing from the kit (the rules' `for` has not run out either way).
      expect(await series('ALERTS{alertstate="firing"}')).toBe(0);
    }, 240_000);
  },
);

describe.skipIf(reason !== undefined)(`restarts an operator makes${reason ? ` (skipped: ${reason})` : ''}`, () => {
  it('an agent restarted with the token it joined with, after the CA rotated, goes on with its renewed certificate', async () => {
    // install.sh keeps CTNET_JOIN_TOKEN in /etc/ctnet/ctagent.env, so every restart passes the
    // token of the first join. After a rotation its CA is gone: the node must keep its valid
    // credential, not throw it away for a join that is refused.
    const token = lab.joinToken;
    // Twice: a node renewed during one rotation holds both roots; after the second its bundle
    // no longer has the root the token names (as after any renewal following a rotation).
    await ok(lab.ctmgr('ca', 'rotate'));
    await ok(lab.ctmgr('ca', 'rotate'));
    await lab.stopAgent('h3');
    await waitUntil(async () => /h3\s+\S+\s+down/.test((await lab.ctmgr('node', 'ls')).stdout), 30_000);
    expect(lab.joinToken).toBe(token);
    const from = lab.agentLog('h3').length;
    lab.startAgent('h3');
    await waitUntil(async () => /h3\s+\S+\s+ready/.test((await lab.ctmgr('node', 'ls')).stdout), 30_000, () => lab.agentLog('h3').slice(from));
    expect(lab.agentLog('h3').slice(from)).toMatch(/the join token was refused; going on with the node certificate this host holds/);
    await waitUntil(() => reachable('h1', 'c1', c3.ip), 20_000, () => lab.logs(20));
  }, 120_000);
});
