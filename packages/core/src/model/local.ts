import { resourceExhausted } from '../errors.js';
import { type Cidr, cidrContains, cidrLast, cidrOverlaps, formatCidr, formatIPv4, parseCidr, parseIPv4 } from '../net/ipv4.js';
import { nameKey } from './names.js';
import type { Network } from './network.js';

/**
 * Local-scope networks. A bridge network lives on each host by itself (no VXLAN): one Linux
 * bridge per host. Unless it is pinned to one node (`--node`), its subnet is a pool and each
 * host gets its own slice of it, so an address is unique cluster-wide (one IPAM for all, no
 * leak on any host) while the hosts never route to each other's slices. Pure.
 */

/** Docker's docker0: on every host, used when `run` names no network, and resolving no names. */
export const DEFAULT_BRIDGE = 'bridge';
/** As `docker network inspect bridge` shows it. */
export const DEFAULT_BRIDGE_OPTION = 'com.docker.network.bridge.default_bridge';

export const isDefaultBridge = (net: Network): boolean => net.driver === 'bridge' && net.options[DEFAULT_BRIDGE_OPTION] === 'true';

/** A bridge network on every host, each with a subnet of its own cut from the network's pool. */
export const isPooled = (net: Network): boolean => net.driver === 'bridge' && !net.node;

/**
 * The size of each host's slice of a pool: a /24 from pools of /20 or more (Docker's docker0
 * hands out a /16 on one host; a /24 per host still leaves 253 containers on each), else
 * sixteen slices of the pool, never smaller than a /30.
 */
export function hostPrefixOf(pool: Cidr): number {
  return Math.max(pool.prefix, Math.min(pool.prefix <= 20 ? 24 : pool.prefix + 4, 30));
}

/**
 * The network as one node sees it: for a pooled bridge, that host's subnet with its first
 * address as the gateway; undefined if the node has no slice yet, or the network is pinned to
 * another node. Other networks are the same everywhere.
 */
export function networkOnNode(net: Network, node: string): Network | undefined {
  if (net.driver !== 'bridge') return net;
  if (net.node) return nameKey(net.node) === nameKey(node) ? net : undefined;
  const slice = net.hostSubnets?.[nameKey(node)];
  if (slice === undefined) return undefined;
  const cidr = parseCidr(slice);
  const aux: Record<string, string> = {};
  for (const [k, v] of Object.entries(net.auxAddresses)) if (cidrContains(cidr, parseIPv4(v))) aux[k] = v;
  return { ...net, subnet: slice, ipRange: slice, gateway: formatIPv4(cidr.base + 1), auxAddresses: aux };
}

/**
 * The next free slice of a pooled bridge network's pool for `node`: clear of the other hosts'
 * slices and of the routes the node reported (a bridge there would take that traffic).
 */
export function pickHostSubnet(net: Network, node: string, routes: readonly string[]): Cidr {
  const pool = parseCidr(net.subnet);
  const size = hostPrefixOf(pool);
  const taken = Object.values(net.hostSubnets ?? {}).map((s) => parseCidr(s));
  const clear = routes.map((r) => parseCidr(r, 'route', false));
  const step = 2 ** (32 - size);
  for (let base = pool.base; base + step - 1 <= cidrLast(pool); base += step) {
    const candidate = { base, prefix: size };
    if (taken.some((t) => cidrOverlaps(t, candidate))) continue;
    if (clear.some((r) => cidrOverlaps(r, candidate))) continue;
    return candidate;
  }
  const blocked = clear.filter((r) => cidrOverlaps(r, pool)).map(formatCidr);
  throw resourceExhausted(
    `network ${net.name} has no /${size} of its pool ${net.subnet} left for node ${node} (${taken.length} host(s) hold one` +
      (blocked.length ? `; the node's routes ${blocked.join(', ')} overlap it` : '') +
      `); create it with a larger --subnet${isDefaultBridge(net) ? ' (the default bridge: ctmgr serve --default-bridge-pool)' : ''}`,
  );
}

/** The per-host subnets of a bridge network, for `network inspect`, each as networkOnNode gives it. */
export function hostSubnetsOf(net: Network): { node: string; subnet: string; gateway: string }[] {
  if (net.driver !== 'bridge') return [];
  const nodes = net.node ? [net.node] : Object.keys(net.hostSubnets ?? {}).sort();
  return nodes.map((node) => {
    const local = networkOnNode(net, node)!;
    return { node, subnet: local.subnet, gateway: local.gateway };
  });
}
