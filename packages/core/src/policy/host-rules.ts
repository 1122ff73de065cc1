import { bridgeName, type ClusterState, type DesiredOverlay } from '../desired/host.js';
import type { Endpoint } from '../model/endpoint.js';
import { nameKey } from '../model/names.js';
import type { PortMapping, Protocol } from '../model/ports.js';
import type { NftChain, NftTable } from './nft.js';
import { endpointsByContainer, serviceTraffic, spreadTo, type ServiceTraffic } from './traffic.js';

/** The table ctnet owns in each host's namespace. */
export const HOST_TABLE = 'ctnet';
/** Conntrack mark of connections the host forwards on behalf of someone (routing mesh, hairpin): their source becomes the host's. */
export const FORWARDED_MARK = '0x00004354';

const BRIDGES = `"${bridgeName('')}*"`;

/**
 * The host's traffic policy (pure), as Docker's iptables chains and Swarm's ingress, in one
 * nftables table:
 * - published ports (`-p`, host-mode tasks): DNAT on this node's own addresses to the
 *   sandbox; connections coming from a local sandbox (hairpin) also take the host's address,
 *   so the reply comes back through here;
 * - the routing mesh (ingress-mode services): every node DNATs the port to a running task
 *   anywhere (round robin), over the overlay, and takes its underlay address as the source, so
 *   the reply returns through it (Swarm's ingress loses the client address the same way);
 * - egress: sandboxes of non-internal networks leave through the host, masqueraded;
 * - isolation: nothing is forwarded between two networks, into or out of an internal one, or
 *   into a network from outside unless it is a published port; a sandbox reaches its host only
 *   for DNS.
 */
export function desiredHostRules(
  state: ClusterState,
  ctx: { node: string; advertiseAddr: string },
  overlays: readonly DesiredOverlay[],
  opts: {
    /** Who serves what, if the caller has it already. */
    traffic?: ServiceTraffic;
    /** "tcp/8080": ports a process on the host already listens on; left to it (see publishedHere). */
    held?: ReadonlySet<string>;
    /**
     * The resolver address of Docker's containers (on lo): reached only from the host itself
     * and its container bridges (ctnet's, docker0, br-*), never from the wire — Linux would
     * otherwise answer it for any neighbour that routes it here.
     */
    containerResolver?: string;
  } = {},
): NftTable {
  const eps = endpointsByContainer(state);
  const held = opts.held ?? new Set<string>();
  const publish: string[] = [];
  for (const { target, ports } of localPublishers(state, ctx.node, eps)) {
    for (const p of ports) {
      if (held.has(`${p.protocol}/${p.hostPort}`)) continue;
      const match = `${p.hostIp ? `ip daddr ${p.hostIp} ` : ''}${p.protocol} dport ${p.hostPort}`;
      publish.push(`iifname ${BRIDGES} ${match} ct mark set ${FORWARDED_MARK} dnat to ${target.ip}:${p.containerPort}`);
      publish.push(`${match} dnat to ${target.ip}:${p.containerPort}`);
    }
  }
  for (const m of (opts.traffic ?? serviceTraffic(state, eps)).mesh) {
    if (m.backends.length === 0) continue; // nothing listens: the kernel refuses the connection itself
    for (const p of m.publish.filter((x) => !held.has(`${x.protocol}/${x.published}`))) publish.push(`${p.protocol} dport ${p.published} ct mark set ${FORWARDED_MARK} ${spreadTo(m.backends, p.target)}`);
  }
  const post = [`ct mark ${FORWARDED_MARK} snat to ${ctx.advertiseAddr}`];
  const forward = ['ct state established,related accept', 'ct status dnat accept'];
  for (const o of overlays) {
    const net = state.networks.get(o.networkId);
    if (!net) continue;
    // With br_netfilter loaded, traffic bridged inside one network passes here too, in and
    // out of the same bridge: only what crosses from one device to another is judged.
    forward.push(`oifname "${o.bridge}" iifname != "${o.bridge}" drop`);
    if (net.internal) forward.push(`iifname "${o.bridge}" oifname != "${o.bridge}" drop`);
    else post.push(`ip saddr ${net.subnet} oifname != "${o.bridge}" masquerade`);
  }
  const chains: NftChain[] = [
    { name: 'nat_pre', base: { type: 'nat', hook: 'prerouting', priority: -100, policy: 'accept' }, rules: ['fib daddr type local jump publish'] },
    { name: 'nat_out', base: { type: 'nat', hook: 'output', priority: -100, policy: 'accept' }, rules: ['fib daddr type local jump publish'] },
    { name: 'publish', rules: publish },
    { name: 'nat_post', base: { type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' }, rules: post },
    { name: 'filter_fwd', base: { type: 'filter', hook: 'forward', priority: 0, policy: 'accept' }, rules: forward },
    {
      name: 'filter_in',
      base: { type: 'filter', hook: 'input', priority: 0, policy: 'accept' },
      rules: [
        ...(opts.containerResolver ? [`ip daddr ${opts.containerResolver} iifname != "lo" iifname != ${BRIDGES} iifname != "docker0" iifname != "br-*" drop`] : []),
        `iifname ${BRIDGES} jump sandbox_in`,
      ],
    },
    {
      name: 'sandbox_in',
      rules: ['ct state established,related accept', 'udp dport 53 accept', 'tcp dport 53 accept', 'drop'],
    },
  ];
  return { family: 'ip', name: HOST_TABLE, chains };
}

/** Who publishes ports on this node: its containers (on their first endpoint) and Docker's (their endpoint itself). */
function localPublishers(
  state: ClusterState,
  node: string,
  eps: ReadonlyMap<string, readonly Endpoint[]> = endpointsByContainer(state),
): { name: string; target: Endpoint; ports: readonly PortMapping[] }[] {
  const out: { name: string; target: Endpoint; ports: readonly PortMapping[] }[] = [];
  const here = (n: string) => nameKey(n) === nameKey(node);
  for (const c of state.containers.values()) {
    if (!here(c.node) || !c.ports?.length || c.mode !== 'network' || (c.task && c.task.desired !== 'running')) continue;
    const target = eps.get(c.id)?.[0];
    if (target) out.push({ name: `container ${c.name}`, target, ports: c.ports });
  }
  for (const e of state.endpoints.values()) {
    if (e.ports?.length && e.container === '' && here(e.node)) out.push({ name: `Docker container ${e.aliases[0] ?? e.name}`, target: e, ports: e.ports });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** What this node publishes (its containers' -p and host-mode tasks, and every ingress port), with who asked. */
export function publishedHere(
  state: ClusterState,
  node: string,
  traffic: ServiceTraffic = serviceTraffic(state),
): { protocol: Protocol; port: number; holder: string; container?: string }[] {
  const out: { protocol: Protocol; port: number; holder: string; container?: string }[] = [];
  for (const { name, target, ports } of localPublishers(state, node)) {
    const container = target.container === '' ? undefined : name.slice('container '.length);
    for (const p of ports) out.push({ protocol: p.protocol, port: p.hostPort, holder: name, ...(container && { container }) });
  }
  for (const m of traffic.mesh) for (const p of m.publish) out.push({ protocol: p.protocol, port: p.published, holder: `service ${m.service} (ingress)` });
  return out;
}

/** A listening socket, as `ss -Hlntup` prints it. */
export interface Listener {
  readonly protocol: Protocol;
  readonly port: number;
  readonly process: string;
}

/** Parses `ss -Hlntup` output (Netid State Recv-Q Send-Q Local Peer Process). */
export function parseListeners(text: string): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || (f[0] !== 'tcp' && f[0] !== 'udp')) continue;
    const port = Number(f[4]!.slice(f[4]!.lastIndexOf(':') + 1));
    if (!Number.isInteger(port)) continue;
    const proc = /\(\("([^"]+)",pid=(\d+)/.exec(f.slice(6).join(' '));
    out.push({ protocol: f[0], port, process: proc ? `${proc[1]} (pid ${proc[2]})` : 'an unknown process' });
  }
  return out;
}
