import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labUnavailableReason, startLab, type Lab } from './lab/lab.js';
import { waitUntil, ok } from './harness.js';

// The local drivers across 3 hosts, all through the kernel: the default bridge network (no
// names, --link), a user-defined bridge network (names on one host, nothing across hosts),
// macvlan sandboxes on the lab's underlay segment (no VXLAN involved), --ip/--mac-address,
// a macvlan parent missing on one host, and the reconciler owning these devices.
const reason = labUnavailableReason();
let lab: Lab;

interface ContainerView {
  name: string;
  node: string;
  status?: { state: string; message: string };
  endpoints: { ip: string; mac: string; network: string }[];
}
const inspect = async (name: string) => (JSON.parse(await ok(lab.ctmgr('inspect', name))) as ContainerView[])[0]!;
const run = (name: string, node: string, ...flags: string[]) => ok(lab.ctmgr('run', '-d', '--name', name, '--node', node, ...flags, '--', 'sleep', 'infinity'));
const waitState = (name: string, state = 'running') =>
  waitUntil(async () => (await inspect(name)).status?.state === state, 20_000, () => lab.logs(20));
/** Runs a command inside a container's sandbox on its host. */
const inside = (host: string, name: string, ...cmd: string[]) => lab.ctagent(host, 'exec', name, '--', ...cmd);
const ping = (host: string, name: string, target: string) => inside(host, name, 'ping', '-c1', '-W1', target);
const reaches = async (host: string, name: string, target: string) => (await ping(host, name, target)).code === 0;
const eventually = (what: () => Promise<boolean>) => waitUntil(what, 20_000, () => lab.logs(20));

describe.skipIf(reason !== undefined)(`local drivers${reason ? ` (skipped: ${reason})` : ''}`, () => {
  const addr = (h: string) => lab.hosts.find((x) => x.name === h)!.addr;
  const segment = () => lab.subnet.split('/')[0]!.split('.').slice(0, 3).join('.'); // "192.168.X"
  beforeAll(async () => {
    lab = await startLab({ hosts: 3, agents: true, resyncSeconds: 2 });
    await waitUntil(async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length === 3, 30_000);
  }, 90_000);
  afterAll(async () => {
    await lab?.destroy();
  });

  it('a bridge subnet over a route of a host is refused, naming the route and the node', async () => {
    // every host has the underlay's connected route: a bridge with that subnet would take its traffic
    const r = await lab.ctmgr('network', 'create', '-d', 'bridge', '--subnet', lab.subnet, 'hijack');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`subnet ${lab.subnet.replace(/\./g, '\\.')} overlaps .* \\(route on node h\\d\\): a bridge with it would take that traffic`));
    expect((await lab.ctmgr('network', 'ls')).stdout).not.toMatch(/hijack/);
  });

  it('regression: an overlay subnet over the hosts\' underlay is refused, naming the host (its gateway would cut the host off)', async () => {
    const r = await lab.ctmgr('network', 'create', '--subnet', lab.subnet, 'hijack-ov');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/overlaps .* \((route on|the address of) node h\d\)/);
    // a /30 around one host's own address alone is refused too
    const [h1] = JSON.parse((await lab.ctmgr('node', 'inspect', 'h1', '--format', 'json')).stdout) as { addr: string }[];
    const quad = h1!.addr.split('.').map(Number);
    const around = `${quad.slice(0, 3).join('.')}.${quad[3]! & ~3}/30`;
    const r2 = await lab.ctmgr('network', 'create', '--subnet', around, 'hijack-ov2');
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toMatch(/overlaps .*node h\d/);
    expect((await lab.ctmgr('network', 'ls')).stdout).not.toMatch(/hijack-ov/);
  });

  it('the default bridge network: reachable by IP and through --link, not by name', async () => {
    await run('a1', 'h1');
    await run('a2', 'h1');
    await run('a3', 'h1', '--link', 'a1:db');
    for (const n of ['a1', 'a2', 'a3']) await waitState(n);
    const a1 = await inspect('a1');
    const [bridge] = JSON.parse(await ok(lab.ctmgr('network', 'inspect', 'bridge'))) as { id: string; driver: string; subnet: string; hostSubnets: { node: string; subnet: string }[]; options: Record<string, string> }[];
    expect(bridge).toMatchObject({ driver: 'bridge', subnet: '172.17.0.0/16', options: { 'com.docker.network.bridge.default_bridge': 'true' } });
    expect(a1.endpoints[0]!.network).toBe('bridge');
    const h1Subnet = bridge!.hostSubnets.find((h) => h.node === 'h1')!.subnet;
    expect(a1.endpoints[0]!.ip.startsWith(h1Subnet.split('.').slice(0, 3).join('.'))).toBe(true);
    await eventually(() => reaches('h1', 'a2', a1.endpoints[0]!.ip));
    // no name resolution on the default bridge: a2 does not find a1 by name
    const byName = await inside('h1', 'a2', 'getent', 'hosts', 'a1');
    expect(byName.code, byName.stdout).not.toBe(0);
    // --link: the alias and the name, from /etc/hosts, and the variables
    expect(await reaches('h1', 'a3', 'db')).toBe(true);
    expect(await reaches('h1', 'a3', 'a1')).toBe(true);
    expect((JSON.parse(await ok(lab.ctmgr('inspect', 'a3'))) as { env: Record<string, string> }[])[0]!.env).toMatchObject({ DB_NAME: '/a3/db' });
  });

  it('a user-defined bridge network: names resolve on one host; hosts cannot reach each other\'s containers', async () => {
    await ok(lab.ctmgr('network', 'create', '-d', 'bridge', 'localnet'));
    const [net] = JSON.parse(await ok(lab.ctmgr('network', 'inspect', 'localnet'))) as { scope: string; subnet: string; hostSubnets: { node: string; subnet: string; gateway: string }[] }[];
    expect(net!.scope).toBe('local');
    // every registered host got its own slice of the pool at once
    expect(net!.hostSubnets.map((h) => h.node)).toEqual(['h1', 'h2', 'h3']);
    expect(new Set(net!.hostSubnets.map((h) => h.subnet)).size).toBe(3);
    await run('b1', 'h1', '--network', 'localnet');
    await run('b2', 'h1', '--network', 'localnet');
    await run('b3', 'h2', '--network', 'localnet');
    for (const n of ['b1', 'b2', 'b3']) await waitState(n);
    const [b1, b3] = [await inspect('b1'), await inspect('b3')];
    const prefix = (h: string) => net!.hostSubnets.find((x) => x.node === h)!.subnet.split('.').slice(0, 3).join('.');
    expect(b1.endpoints[0]!.ip.startsWith(`${prefix('h1')}.`)).toBe(true);
    expect(b3.endpoints[0]!.ip.startsWith(`${prefix('h2')}.`)).toBe(true);
    const resolved = await ok(inside('h1', 'b2', 'getent', 'hosts', 'b1'));
    expect(resolved.split(/\s+/)[0]).toBe(b1.endpoints[0]!.ip);
    await eventually(() => reaches('h1', 'b2', 'b1'));
    // local: b3 on h2 is neither found by name nor reached from h1, and the other way round
    expect((await inside('h1', 'b1', 'getent', 'hosts', 'b3')).code).not.toBe(0);
    expect(await reaches('h1', 'b1', b3.endpoints[0]!.ip)).toBe(false);
    expect(await reaches('h2', 'b3', b1.endpoints[0]!.ip)).toBe(false);
    // no VXLAN device on h1 for it, only the bridge
    const links = await ok(lab.exec('h1', 'ip', '-o', 'link', 'show'));
    expect(links).not.toMatch(/ctvx-/);
    expect(links).toMatch(/ctbr-/);
  });

  it('--ip and --mac-address on a bridge network: inside this host\'s subnet, or a clear error', async () => {
    const [net] = JSON.parse(await ok(lab.ctmgr('network', 'inspect', 'localnet'))) as { hostSubnets: { node: string; subnet: string }[] }[];
    const h1 = net!.hostSubnets.find((x) => x.node === 'h1')!.subnet.split('.').slice(0, 3).join('.');
    const h2 = net!.hostSubnets.find((x) => x.node === 'h2')!.subnet.split('.').slice(0, 3).join('.');
    await run('b4', 'h1', '--network', 'localnet', '--ip', `${h1}.50`, '--mac-address', '02:aa:bb:cc:dd:04');
    await waitState('b4');
    const eth0 = JSON.parse(await ok(inside('h1', 'b4', 'ip', '-j', 'addr', 'show', 'eth0'))) as { address: string; addr_info: { local: string }[] }[];
    expect(eth0[0]!.address).toBe('02:aa:bb:cc:dd:04');
    expect(eth0[0]!.addr_info.map((a) => a.local)).toContain(`${h1}.50`);
    expect(await reaches('h1', 'b2', `${h1}.50`)).toBe(true);
    const wrong = await lab.ctmgr('run', '-d', '--name', 'b5', '--network', 'localnet', '--node', 'h1', '--ip', `${h2}.50`, '--', 'sleep', '1');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(new RegExp(`address ${h2}\\.50 is outside subnet ${h1}\\.0/24 of network localnet on node h1`));
    expect((await lab.ctmgr('ps')).stdout).not.toMatch(/\bb5\b/); // nothing recorded
  });

  it('macvlan: sandboxes on two hosts talk over the underlay segment directly, with no VXLAN packet; a host on the segment reaches them', async () => {
    const seg = segment();
    await ok(lab.ctmgr('network', 'create', '-d', 'macvlan', '-o', 'parent=eth0', '--subnet', lab.subnet, '--gateway', lab.manager.addr, '--ip-range', `${seg}.128/25`, 'pub'));
    await run('m1', 'h1', '--network', 'pub');
    await run('m2', 'h2', '--network', 'pub', '--ip', `${seg}.200`, '--mac-address', '02:aa:bb:cc:dd:02');
    await waitState('m1');
    await waitState('m2');
    const m1 = (await inspect('m1')).endpoints[0]!.ip;
    expect(m1.startsWith(`${seg}.`)).toBe(true);
    expect(Number(m1.split('.')[3])).toBeGreaterThanOrEqual(128);
    const kinds = JSON.parse(await ok(inside('h2', 'm2', 'ip', '-d', '-j', 'link', 'show', 'eth0'))) as { address: string; linkinfo: { info_kind: string } }[];
    expect(kinds[0]).toMatchObject({ address: '02:aa:bb:cc:dd:02', linkinfo: { info_kind: 'macvlan' } });
    // Count, on the lab's switch, the pings between the two and every VXLAN packet.
    const counters = [
      'table bridge ctlab_count {',
      '  chain count_fwd {',
      '    type filter hook forward priority 0; policy accept;',
      `    ip saddr ${m1} ip daddr ${seg}.200 icmp type echo-request counter`,
      '    udp dport 4789 counter',
      '  }',
      '}',
    ].join('\n');
    const nft = await lab.execIn(lab.underlayNs, 'sh', '-c', `printf '%s\\n' '${counters}' | nft -f -`);
    expect(nft.code, nft.stderr).toBe(0);
    await eventually(() => reaches('h1', 'm1', `${seg}.200`));
    expect((await ping('h1', 'm1', `${seg}.200`)).code).toBe(0);
    const listed = await ok(lab.execIn(lab.underlayNs, 'nft', 'list', 'table', 'bridge', 'ctlab_count'));
    const packets = [...listed.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
    expect(packets[0]).toBeGreaterThanOrEqual(1); // the pings crossed the segment as they are
    expect(packets[1]).toBe(0); // and nothing was encapsulated
    // a host namespace on the same segment (the manager's, and h3) reaches them by address
    expect((await lab.exec('m', 'ping', '-c1', '-W1', m1)).code).toBe(0);
    expect((await lab.exec('h3', 'ping', '-c1', '-W1', `${seg}.200`)).code).toBe(0);
    // the usual macvlan limitation (see README): not its own host's parent address
    expect(await reaches('h1', 'm1', addr('h1'))).toBe(false);
    expect(await reaches('h1', 'm1', addr('h2'))).toBe(true);
  });

  it('bad input: macvlan without a parent or overlapping another network, -p on macvlan, a pinned network elsewhere', async () => {
    const noParent = await lab.ctmgr('network', 'create', '-d', 'macvlan', '--subnet', '10.98.0.0/24', 'np');
    expect(noParent.stderr).toMatch(/a macvlan network needs its parent interface; add -o parent=IFACE/);
    const overlap = await lab.ctmgr('network', 'create', '-d', 'macvlan', '-o', 'parent=eth0', '--subnet', `${segment()}.0/25`, 'pub2');
    expect(overlap.stderr).toMatch(new RegExp(`overlaps ${lab.subnet.replace(/\./g, '\\.')} \\(network pub\\)`));
    const hostRoute = await lab.ctmgr('network', 'create', '-d', 'bridge', '--node', 'h1', '--subnet', '192.168.250.0/24', 'pinned');
    expect(hostRoute.code, hostRoute.stderr).toBe(0);
    const p = await lab.ctmgr('run', '-d', '--name', 'mp', '--network', 'pub', '--node', 'h1', '-p', '8080:80', '--', 'sleep', '1');
    expect(p.stderr).toMatch(/network pub is macvlan: .* drop -p\/-P/);
    const elsewhere = await lab.ctmgr('run', '-d', '--name', 'pz', '--network', 'pinned', '--node', 'h2', '--', 'sleep', '1');
    expect(elsewhere.stderr).toMatch(/network pinned lives on node h1 only/);
  });

  it('a macvlan parent missing on one host: that host reports it (node and network), the others keep working', async () => {
    // h1 and h3 have an interface "xpar0"; h2 has not
    for (const h of ['h1', 'h3']) {
      await ok(lab.exec(h, 'ip', 'link', 'add', 'xpar0', 'type', 'veth', 'peer', 'name', 'xpar1'));
      await ok(lab.exec(h, 'ip', 'link', 'set', 'xpar0', 'up'));
      await ok(lab.exec(h, 'ip', 'link', 'set', 'xpar1', 'up'));
    }
    await ok(lab.ctmgr('network', 'create', '-d', 'macvlan', '-o', 'parent=xpar0', '--subnet', '10.96.0.0/24', '--gateway', '10.96.0.1', 'odd'));
    await run('o1', 'h1', '--network', 'odd');
    await run('o3', 'h3', '--network', 'odd');
    await run('o2', 'h2', '--network', 'odd');
    await waitState('o1');
    await waitState('o3');
    await waitState('o2', 'failed');
    expect((await inspect('o2')).status!.message).toMatch(/parent interface xpar0 of macvlan network odd does not exist on node h2/);
    await waitUntil(async () => /Problem:\s+parent interface xpar0/.test(await ok(lab.ctmgr('node', 'inspect', '--format', 'table', 'h2'))), 20_000, () => lab.logs(20));
    const [odd] = JSON.parse(await ok(lab.ctmgr('network', 'inspect', 'odd'))) as { problems: Record<string, string> }[];
    expect(Object.keys(odd!.problems)).toEqual(['h2']);
    expect((JSON.parse(await ok(lab.ctmgr('node', 'inspect', 'h1'))) as { problems: Record<string, string> }[])[0]!.problems).toEqual({});
    // h2 still applies (and acks) every change: it does not look stuck to the cluster
    await waitUntil(async () => (JSON.parse(await ok(lab.ctmgr('node', 'inspect', 'h2'))) as { lag: number }[])[0]!.lag === 0, 20_000, () => lab.logs(20));
    // the same network works where the parent exists, and h2 goes on with everything else
    for (const [h, n] of [['h1', 'o1'], ['h3', 'o3']] as const) {
      const [eth0] = JSON.parse(await ok(inside(h, n, 'ip', '-d', '-j', 'addr', 'show', 'eth0'))) as { linkinfo: { info_kind: string }; addr_info: { local: string }[] }[];
      expect(eth0!.linkinfo.info_kind).toBe('macvlan');
      expect(eth0!.addr_info.map((a) => a.local)).toContain((await inspect(n)).endpoints[0]!.ip);
    }
    await run('b6', 'h2', '--network', 'localnet');
    await waitState('b6');
    expect(await reaches('h2', 'b6', 'b3')).toBe(true);
    // the container goes, and with it the problem
    await ok(lab.ctmgr('rm', '-f', 'o2'));
    await waitUntil(async () => !/Problem:/.test(await ok(lab.ctmgr('node', 'inspect', '--format', 'table', 'h2'))), 20_000, () => lab.logs(20));
  });

  it('the reconciler owns these devices: adopts them on restart, repairs drift, removes them when gone', async () => {
    const seg = segment();
    const b1 = (await inspect('b1')).endpoints[0]!.ip;
    const ifindex = async () => (JSON.parse(await ok(inside('h1', 'm1', 'ip', '-j', 'link', 'show', 'eth0'))) as { ifindex: number }[])[0]!.ifindex;
    const before = await ifindex();
    await lab.stopAgent('h1', 'SIGKILL');
    lab.startAgent('h1');
    await waitUntil(async () => ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length === 3, 30_000);
    await eventually(() => reaches('h1', 'b2', b1));
    expect(await ifindex()).toBe(before); // adopted, not made again
    expect(await reaches('h1', 'm1', `${seg}.200`)).toBe(true);
    // drift: the bridge of localnet deleted by hand, m1's macvlan deleted inside its sandbox
    const bridge = (await ok(lab.exec('h1', 'ip', '-o', 'link', 'show', 'type', 'bridge'))).match(/ctbr-[0-9a-f]{8}/g)!;
    for (const b of bridge) await ok(lab.exec('h1', 'ip', 'link', 'del', b));
    await ok(inside('h1', 'm1', 'ip', 'link', 'del', 'eth0'));
    await eventually(() => reaches('h1', 'b2', b1));
    await eventually(() => reaches('h1', 'm1', `${seg}.200`));
    expect(lab.agentLog('h1')).toMatch(/repaired drift/);
    // connect and disconnect: a macvlan eth1 next to a bridge eth0, made and removed on a live sandbox
    await ok(lab.ctmgr('network', 'connect', 'pub', 'a2'));
    await eventually(() => reaches('h1', 'a2', `${seg}.200`));
    expect(await ok(inside('h1', 'a2', 'ip', '-d', 'link', 'show', 'eth1'))).toMatch(/macvlan mode bridge/);
    await ok(lab.ctmgr('network', 'disconnect', 'pub', 'a2'));
    await waitUntil(async () => (await inside('h1', 'a2', 'ip', 'link', 'show', 'eth1')).code !== 0, 20_000, () => lab.logs(20));
    // gone: every container of localnet on h1 removed -> its bridge leaves h1
    const localnet = (JSON.parse(await ok(lab.ctmgr('network', 'inspect', 'localnet'))) as { id: string }[])[0]!.id.slice(0, 8);
    for (const n of ['b1', 'b2', 'b4']) await ok(lab.ctmgr('rm', '-f', n));
    await waitUntil(async () => !(await ok(lab.exec('h1', 'ip', '-o', 'link', 'show'))).includes(`ctbr-${localnet}`), 20_000, () => lab.logs(20));
    // and the macvlan sandbox with its container: its address no longer answers on the segment
    const m1 = (await inspect('m1')).endpoints[0]!.ip;
    await ok(lab.ctmgr('rm', '-f', 'm1'));
    await waitUntil(async () => (await lab.exec('m', 'ping', '-c1', '-W1', m1)).code !== 0, 20_000, () => lab.logs(20));
    expect((await lab.ctagent('h1', 'ps')).stdout).not.toMatch(/\bm1\b/);
  });
});
