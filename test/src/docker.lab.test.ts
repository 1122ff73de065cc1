import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailableReason, startLab, type Lab } from './lab/lab.js';
import { LAB_DOCKER_IMAGE, dockerdUnavailableReason, startDockerd, type LabDockerd } from './lab/dockerd.js';
import { REPO, ok, waitUntil } from './harness.js';

const PROBE = join(REPO, 'test/src/lab/fixtures/tcp-probe.mjs');

// A real engine: Debian's dockerd 20.10 on h1 and h3, started with the one line of daemon
// configuration ctnet asks for (--dns <the agent's Docker resolver address>); h2 runs ctnet's
// own containers only. Every Docker call goes through the ctnet plugin socket each agent serves.
const reason = labUnavailableReason() ?? dockerdUnavailableReason();
let lab: Lab;
const engines = new Map<string, LabDockerd>();
const docker = (host: string, ...args: string[]) => engines.get(host)!.docker(...args);
const ipOf = async (host: string, name: string, net: string) =>
  (await ok(docker(host, 'inspect', '-f', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`, name))).trim();
const networkDetail = async (name: string) => JSON.parse(await ok(lab.ctmgr('network', 'inspect', name))) as { subnet?: string; endpoints?: { name: string; node: string; ip: string; aliases?: string[] }[] }[];
const usage = async (name: string) => (await networkDetail(name))[0]!.endpoints?.length ?? 0;
const failure = async (p: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> => {
  const r = await p;
  expect(r.code, `expected a failure, got: ${r.stdout}`).not.toBe(0);
  return r.stderr;
};

describe.skipIf(reason !== undefined)(`Docker network and IPAM plugin with dockerd${reason ? ` (skipped: ${reason})` : ''}`, () => {
  beforeAll(async () => {
    lab = await startLab({ hosts: 3, agents: true, resyncSeconds: 2, docker: true });
    await waitUntil(async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length === 3, 30_000, () => lab.logs(20));
    // --live-restore: a user's choice that keeps containers running across dockerd restarts.
    for (const host of ['h1', 'h3']) engines.set(host, await startDockerd(lab, host, ['--live-restore']));
  }, 240_000);
  afterAll(async () => {
    for (const e of engines.values()) await e.destroy().catch(() => undefined);
    await lab?.destroy();
  }, 120_000);

  it('a network created once through Docker exists in the cluster and in every host\'s Docker', async () => {
    await ok(docker('h1', 'network', 'create', '-d', 'ctnet', '--ipam-driver', 'ctnet', '--subnet', '10.77.0.0/24', 'appnet'));
    await waitUntil(async () => (await lab.ctmgr('network', 'ls')).stdout.includes('appnet'), 10_000, () => lab.logs(20));
    expect((await networkDetail('appnet'))[0]!.subnet).toBe('10.77.0.0/24');
    // The other Docker host has it under the same name, made by its agent through the Docker API.
    await waitUntil(async () => (await docker('h3', 'network', 'ls', '--format', '{{.Name}} {{.Driver}}')).stdout.includes('appnet ctnet'), 10_000, () => lab.logs(20));
    // A network made with ctmgr appears in Docker too.
    await ok(lab.ctmgr('network', 'create', '--subnet', '10.78.0.0/24', 'fromctmgr'));
    for (const host of ['h1', 'h3']) {
      await waitUntil(async () => (await docker(host, 'network', 'ls', '--format', '{{.Name}}')).stdout.includes('fromctmgr'), 10_000, () => lab.logs(20));
    }
    const inspected = JSON.parse(await ok(docker('h3', 'network', 'inspect', 'fromctmgr'))) as { IPAM: { Config: { Subnet: string; Gateway: string }[] } }[];
    expect(inspected[0]!.IPAM.Config[0]).toMatchObject({ Subnet: '10.78.0.0/24', Gateway: '10.78.0.1' });
  });

  it('Docker containers on two hosts reach each other by address, name and alias; ctnet containers resolve them and back', async () => {
    await ok(docker('h1', 'run', '-d', '--name', 'web1', '--network', 'appnet', '--network-alias', 'www', LAB_DOCKER_IMAGE, 'sleep', '600'));
    await ok(docker('h3', 'run', '-d', '--name', 'web3', '--network', 'appnet', LAB_DOCKER_IMAGE, 'sleep', '600'));
    const ip1 = await ipOf('h1', 'web1', 'appnet');
    const ip3 = await ipOf('h3', 'web3', 'appnet');
    expect(ip1).toMatch(/^10\.77\.0\./);
    expect(ip3).toMatch(/^10\.77\.0\./);
    expect(ip1).not.toBe(ip3);
    await ok(docker('h1', 'exec', 'web1', 'ping', '-c1', '-W2', ip3));
    // By name across hosts: Docker's own resolver knows only its host's containers and forwards
    // the rest to the ctnet agent (daemon "dns").
    let diag = '';
    await waitUntil(
      async () => {
        const r = await docker('h1', 'exec', 'web1', 'ping', '-c1', '-W2', 'web3');
        if (r.code !== 0) diag = `${r.stderr}\n${(await docker('h1', 'exec', 'web1', 'nslookup', 'web3')).stdout}\n${(await docker('h1', 'exec', 'web1', 'ip', 'route')).stdout}\n${await ok(lab.ctmgr('network', 'inspect', 'appnet'))}\n${(await lab.exec('h1', 'nft', 'list', 'ruleset')).stdout}`;
        return r.code === 0;
      },
      15_000,
      () => `${diag}\n${lab.logs(30)}`,
    );
    expect(await ok(docker('h1', 'exec', 'web1', 'ping', '-c1', '-W2', 'web3'))).toContain(ip3);
    await waitUntil(async () => (await docker('h3', 'exec', 'web3', 'ping', '-c1', '-W2', 'www')).code === 0, 15_000, () => lab.logs(20));
    expect(await ok(docker('h3', 'exec', 'web3', 'ping', '-c1', '-W2', 'www'))).toContain(ip1);

    // A ctnet container on h2 (no Docker there) and the Docker containers find each other.
    await ok(lab.ctmgr('run', '-d', '--name', 'native', '--network', 'appnet', '--node', 'h2', '--', 'sleep', '600'));
    await waitUntil(async () => (await docker('h1', 'exec', 'web1', 'ping', '-c1', '-W2', 'native')).code === 0, 15_000, () => lab.logs(20));
    const fromNative = await ok(lab.ctagent('h2', 'exec', 'native', '--', 'ping', '-c1', '-W2', 'web1'));
    expect(fromNative).toContain(ip1);
    // A ctnet service (vip mode, tasks on h2): a Docker container, whose sandbox has no VIP
    // balancing, is answered with the running tasks and reaches one.
    await ok(lab.ctmgr('service', 'create', '--name', 'svc', '--network', 'appnet', '--replicas', '2', '--constraint', 'node.name==h2', '--', 'sleep', 'infinity'));
    await waitUntil(async () => (await docker('h1', 'exec', 'web1', 'ping', '-c1', '-W2', 'svc')).code === 0, 20_000, () => lab.logs(20));
    const tasks = (await networkDetail('appnet'))[0]!.endpoints!.filter((e) => e.name.startsWith('svc.')).map((e) => e.ip);
    expect(tasks).toHaveLength(2);
    const reached = /PING svc \((\d+\.\d+\.\d+\.\d+)\)/.exec(await ok(docker('h1', 'exec', 'web1', 'ping', '-c1', '-W2', 'svc')))?.[1];
    expect(tasks).toContain(reached);
    await ok(lab.ctmgr('service', 'rm', 'svc'));
    // The cluster shows the Docker containers beside its own, under their names.
    const eps = (await networkDetail('appnet'))[0]!.endpoints ?? [];
    expect(eps.find((e) => e.ip === ip3)).toMatchObject({ node: 'h3' });
    expect(eps.find((e) => e.ip === ip3)?.aliases).toContain('web3');
    expect((await ok(lab.ctmgr('ps'))).split('\n').find((l) => /\bweb3\b/.test(l))).toMatch(/^\(docker\)\s+web3\s+h3\s+appnet\s+/);
  });

  it('-p publishes on the host\'s address from the underlay; connect, disconnect, stop, start and --rm keep the cluster in step', async () => {
    const h1 = lab.hosts.find((h) => h.name === 'h1')!.addr;
    // A server that answers each connection with one line.
    await ok(docker('h1', 'run', '-d', '--name', 'pub', '--network', 'appnet', '-p', '8080:80', '-p', '80', LAB_DOCKER_IMAGE, 'nc', '-ll', '-p', '80', '-e', 'echo', 'hello-from-pub'));
    const probe = async (port: number) => JSON.parse(await ok(lab.exec('h2', process.execPath, PROBE, 'once', h1, String(port), '1', '2000'))) as { answers: string[]; errors: string[] };
    let diag = '';
    await waitUntil(
      async () => {
        const r = await probe(8080);
        if (!r.answers[0]) {
          const ip = await ipOf('h1', 'pub', 'appnet');
          diag = [
            JSON.stringify(r),
            (await docker('h1', 'ps', '-a')).stdout,
            (await docker('h1', 'logs', 'pub')).stderr,
            JSON.stringify(await probe(8080)),
            (await lab.exec('h1', process.execPath, PROBE, 'once', ip, '80', '1', '2000')).stdout,
            (await lab.exec('h1', 'nft', 'list', 'table', 'ip', 'ctnet')).stdout,
            JSON.stringify((await networkDetail('appnet'))[0]!.endpoints),
          ].join('\n');
        }
        return r.answers[0]?.includes('hello-from-pub') === true;
      },
      15_000,
      () => diag,
    );
    // -p 80: the cluster chose the host port (dockerd's "docker port" shows only its own
    // drivers' mappings; ctmgr network inspect shows this one).
    const pubIp = await ipOf('h1', 'pub', 'appnet');
    const pubEp = (await networkDetail('appnet'))[0]!.endpoints?.find((e) => e.ip === pubIp) as { ports?: { hostPort: number; containerPort: number }[] } | undefined;
    const chosen = pubEp?.ports?.find((p) => p.hostPort !== 8080)?.hostPort ?? 0;
    expect(chosen, JSON.stringify(pubEp)).toBeGreaterThanOrEqual(32768);
    await waitUntil(async () => (await probe(chosen)).answers[0]?.includes('hello-from-pub') === true, 15_000, () => lab.logs(20));
    // The same host port again on h1: refused, naming who has it.
    expect(await failure(docker('h1', 'run', '-d', '--name', 'pub2', '--network', 'appnet', '-p', '8080:80', LAB_DOCKER_IMAGE, 'sleep', '600'))).toMatch(/8080.*already published by .*pub/);
    await docker('h1', 'rm', '-f', 'pub2');

    // Egress: a non-internal network reaches beyond the cluster (here the underlay) through its host.
    await ok(docker('h1', 'exec', 'pub', 'ping', '-c1', '-W2', lab.hosts.find((h) => h.name === 'h2')!.addr));

    // connect/disconnect: a second network on a running container, reachable and named across hosts.
    await ok(docker('h3', 'network', 'connect', '--alias', 'second', 'fromctmgr', 'web3'));
    const ip3b = await ipOf('h3', 'web3', 'fromctmgr');
    expect(ip3b).toMatch(/^10\.78\.0\./);
    await ok(docker('h1', 'run', '-d', '--name', 'other1', '--network', 'fromctmgr', '--ip', '10.78.0.77', '--mac-address', '02:42:aa:bb:cc:dd', LAB_DOCKER_IMAGE, 'sleep', '600'));
    expect(await ipOf('h1', 'other1', 'fromctmgr')).toBe('10.78.0.77');
    expect((await ok(docker('h1', 'exec', 'other1', 'cat', '/sys/class/net/eth0/address'))).trim()).toBe('02:42:aa:bb:cc:dd');
    await waitUntil(async () => (await docker('h1', 'exec', 'other1', 'ping', '-c1', '-W2', 'second')).code === 0, 15_000, () => lab.logs(20));
    await ok(docker('h3', 'network', 'disconnect', 'fromctmgr', 'web3'));
    await waitUntil(async () => !(await networkDetail('fromctmgr'))[0]!.endpoints?.some((e) => e.ip === ip3b), 10_000, () => lab.logs(20));
    expect((await docker('h1', 'exec', 'other1', 'ping', '-c1', '-W1', ip3b)).code).not.toBe(0);

    // stop releases the address and the ports; start claims them again.
    const before = await usage('appnet');
    await ok(docker('h1', 'stop', '-t', '1', 'pub'));
    await waitUntil(async () => (await usage('appnet')) === before - 1, 10_000, () => lab.logs(20));
    expect((await probe(8080)).answers).toHaveLength(0);
    await ok(docker('h1', 'start', 'pub'));
    await waitUntil(async () => (await probe(8080)).answers[0]?.includes('hello-from-pub') === true, 15_000, () => lab.logs(20));
    await ok(docker('h1', 'rm', '-f', 'pub', 'other1'));
    await waitUntil(async () => (await usage('appnet')) === before - 1 && (await usage('fromctmgr')) === 0, 10_000, () => lab.logs(20));

    // --rm: the container and its address go when it ends.
    await ok(docker('h3', 'run', '--rm', '--network', 'appnet', LAB_DOCKER_IMAGE, 'ping', '-c1', '-W2', 'www'));
    await waitUntil(async () => (await usage('appnet')) === before - 1, 10_000, () => lab.logs(20));
  });

  it('dockerd and agent restarts lose no packet of a cross-host ping; the names and the network stay', async () => {
    await ok(docker('h3', 'run', '-d', '--name', 'target', '--network', 'fromctmgr', LAB_DOCKER_IMAGE, 'sleep', '600'));
    const target = await ipOf('h3', 'target', 'fromctmgr');
    await waitUntil(async () => (await docker('h1', 'run', '--rm', '--network', 'fromctmgr', LAB_DOCKER_IMAGE, 'ping', '-c1', '-W1', 'target')).code === 0, 15_000, () => lab.logs(20));
    // About 14 s of pings, 5 a second, while each piece restarts under them. The ping is the
    // container's own process (an exec's output would die with the dockerd killed below).
    await ok(docker('h1', 'run', '-d', '--name', 'pinger', '--network', 'fromctmgr', LAB_DOCKER_IMAGE, 'ping', '-c', '70', '-i', '0.2', '-W', '1', target));
    await new Promise((r) => setTimeout(r, 500));
    await engines.get('h3')!.stop('SIGTERM');
    await engines.get('h3')!.start();
    await lab.stopAgent('h1');
    lab.startAgent('h1');
    await lab.stopAgent('h3');
    lab.startAgent('h3');
    await engines.get('h1')!.stop('SIGKILL');
    await engines.get('h1')!.start();
    expect((await ok(docker('h1', 'wait', 'pinger'))).trim()).toBe('0');
    expect((await docker('h1', 'logs', 'pinger')).stdout).toMatch(/70 packets transmitted, 70 packets received/);
    // Everything still works through the restarted pieces: a new container, names both ways.
    await ok(docker('h1', 'rm', '-f', 'pinger'));
    await ok(docker('h1', 'run', '-d', '--name', 'after', '--network', 'fromctmgr', LAB_DOCKER_IMAGE, 'sleep', '600'));
    await waitUntil(async () => (await docker('h3', 'exec', 'target', 'ping', '-c1', '-W1', 'after')).code === 0, 30_000, () => lab.logs(20));
    await ok(docker('h1', 'exec', 'after', 'ping', '-c1', '-W2', 'target'));
    await ok(docker('h1', 'rm', '-f', 'after'));
    await ok(docker('h3', 'rm', '-f', 'target'));
  });

  it('100 docker run/rm cycles with dockerd killed -9 midway leave the cluster\'s IPAM where it was', async () => {
    await waitUntil(async () => (await usage('fromctmgr')) === 0, 30_000, () => lab.logs(20));
    for (let i = 0; i < 100; i++) {
      const run = docker('h1', 'run', '-d', '--name', `cyc${i}`, '--network', 'fromctmgr', LAB_DOCKER_IMAGE, 'sleep', '600');
      if (i === 50) {
        // Midway, while a run is in flight: dockerd dies without releasing anything.
        await new Promise((r) => setTimeout(r, 100));
        await engines.get('h1')!.stop('SIGKILL');
        await run;
        await engines.get('h1')!.start();
      } else await run;
      await docker('h1', 'rm', '-f', `cyc${i}`);
    }
    for (const id of (await ok(docker('h1', 'ps', '-aq', '--filter', 'name=cyc'))).split('\n').filter(Boolean)) await docker('h1', 'rm', '-f', id);
    // Whatever dockerd did not release itself, the agent's sync against its API releases.
    await waitUntil(async () => (await usage('fromctmgr')) === 0, 120_000, () => lab.logs(30));
    expect(await ok(lab.exec('h1', 'ip', '-br', 'link'))).not.toMatch(/ctdk/);
  }, 600_000);

  it('refuses what it cannot do, with the reason in the docker CLI\'s own message', async () => {
    // A subnet over another ctnet network.
    expect(await failure(docker('h3', 'network', 'create', '-d', 'ctnet', '--ipam-driver', 'ctnet', '--subnet', '10.77.0.128/25', 'clash'))).toMatch(/overlaps 10\.77\.0\.0\/24 \(ctnet network appnet\)/);
    // An option the driver does not know.
    expect(await failure(docker('h1', 'network', 'create', '-d', 'ctnet', '--ipam-driver', 'ctnet', '-o', 'color=blue', 'opts'))).toMatch(/unknown option "color"/);
    // --aux-address: ctmgr's to give.
    expect(await failure(docker('h1', 'network', 'create', '-d', 'ctnet', '--ipam-driver', 'ctnet', '--subnet', '10.79.3.0/24', '--aux-address', 'router=10.79.3.5', 'auxnet'))).toMatch(/--aux-address is not taken through Docker/);
    // Without ctnet's IPAM.
    expect(await failure(docker('h1', 'network', 'create', '-d', 'ctnet', '--subnet', '10.79.0.0/24', 'noipam'))).toMatch(/--ipam-driver ctnet/);
    // An address another host's container has.
    const ip1 = await ipOf('h1', 'web1', 'appnet');
    expect(await failure(docker('h3', 'run', '-d', '--name', 'dup', '--network', 'appnet', '--ip', ip1, LAB_DOCKER_IMAGE, 'sleep', '600'))).toMatch(new RegExp(`${ip1.replaceAll('.', '\\.')} is already in use in network appnet by Docker container web1 on node h1`));
    await docker('h3', 'rm', '-f', 'dup');
    for (const name of ['clash', 'opts', 'noipam', 'auxnet']) expect((await lab.ctmgr('network', 'ls')).stdout).not.toContain(name);

    // A name h3's Docker has for another driver: refused for a new cluster network, naming h3,
    // with ctmgr at once; through Docker on h1, removed again from h1's Docker (Docker tells a
    // driver no name: the cluster learns it just after), and made nowhere.
    await ok(docker('h3', 'network', 'create', '--subnet', '10.79.9.0/24', 'clashnet'));
    await waitUntil(async () => (await ok(lab.ctmgr('node', 'inspect', 'h3', '--format', 'json'))).includes('"clashnet": "bridge"'), 15_000, () => lab.logs(20));
    expect(await failure(lab.ctmgr('network', 'create', '--subnet', '10.79.1.0/24', 'clashnet'))).toMatch(/Docker already has a network named clashnet on node h3 \(a bridge network\)/);
    await ok(docker('h1', 'network', 'create', '-d', 'ctnet', '--ipam-driver', 'ctnet', '--subnet', '10.79.2.0/24', 'clashnet'));
    await waitUntil(async () => !(await docker('h1', 'network', 'ls', '--format', '{{.Name}}')).stdout.includes('clashnet'), 15_000, () => lab.logs(20));
    expect(lab.agentLog('h1')).toMatch(/docker network clashnet was removed again: the cluster refused it/);
    expect((await lab.ctmgr('network', 'ls')).stdout).not.toContain('clashnet');
    await ok(docker('h3', 'network', 'rm', 'clashnet'));
  });

  it('removing containers releases their addresses and names; network rm on one host removes it everywhere', async () => {
    await ok(docker('h3', 'rm', '-f', 'web3'));
    // h3's Docker has no container on it now, but h1 and h2 have. Docker removes its own copy
    // whatever a driver answers (libnetwork honours no driver error on delete), so the cluster
    // keeps the network and h3's agent puts it back in h3's Docker.
    const before = (await ok(docker('h3', 'network', 'inspect', '-f', '{{.Id}}', 'appnet'))).trim();
    await ok(docker('h3', 'network', 'rm', 'appnet'));
    await waitUntil(async () => {
      const r = await docker('h3', 'network', 'inspect', '-f', '{{.Id}}', 'appnet');
      return r.code === 0 && r.stdout.trim() !== before;
    }, 10_000, () => lab.logs(20));
    expect((await lab.ctmgr('network', 'ls')).stdout).toContain('appnet');
    expect(lab.agentLog('h3')).toMatch(/network appnet is in use by 2 endpoint\(s\) in the cluster/);
    await ok(docker('h1', 'rm', '-f', 'web1'));
    await ok(lab.ctmgr('rm', '-f', 'native'));
    await waitUntil(async () => (await usage('appnet')) === 0, 15_000, () => lab.logs(20));
    expect(await ok(lab.exec('h1', 'ip', '-br', 'link'))).not.toMatch(/ctve-|ctdk/);
    await ok(docker('h3', 'network', 'rm', 'appnet'));
    await waitUntil(async () => !(await lab.ctmgr('network', 'ls')).stdout.includes('appnet'), 10_000, () => lab.logs(20));
    await waitUntil(async () => !(await docker('h1', 'network', 'ls', '--format', '{{.Name}}')).stdout.includes('appnet'), 10_000, () => lab.logs(20));
  });
});
