import { randomUUID } from 'node:crypto';
import {
  alreadyExists,
  assignableCount,
  buildNetwork,
  checkSubnetFree,
  CtnetError,
  DEFAULT_BRIDGE,
  DEFAULT_BRIDGE_OPTION,
  ErrorCode,
  failedPrecondition,
  findOverlap,
  formatCidr,
  invalidArgument,
  isDefaultBridge,
  isPooled,
  nameKey,
  networkOnNode,
  pickHostSubnet,
  type Cidr,
  type NetworkSpec,
  type Node,
  notFound,
  parseCidr,
  parseNetworkRequest,
  pickSubnet,
  pickVni,
  planAddresses,
  type Network,
  type Occupied,
} from '@ctnet/core';
import {
  endpointToWire,
  networkToWire,
  type CreateNetworkRequest,
  type InspectNetworkRequest,
  type ListNetworksResponse,
  type Network as WireNetwork,
  type NetworkDetail,
  type RemoveNetworkRequest,
  type RemoveNetworkResponse,
} from '@ctnet/proto';
import type { ManagerDeps } from '../deps.js';

// 32 hex digits, like Docker's ids; randomUUID draws from a cached entropy pool (cheap per call).
export const newId = (): string => randomUUID().replaceAll('-', '');

export async function createNetwork(deps: ManagerDeps, req: CreateNetworkRequest): Promise<WireNetwork> {
  const spec = parseNetworkRequest({
    name: req.name,
    driver: req.driver,
    subnet: req.subnet,
    gateway: req.gateway,
    ipRange: req.ipRange,
    auxAddresses: req.auxAddresses,
    attachable: req.attachable,
    internal: req.internal,
    options: req.options,
    labels: req.labels,
    node: req.node,
  });
  return networkToWire(await createFromSpec(deps, spec));
}

async function createFromSpec(deps: ManagerDeps, spec: NetworkSpec, opts: { builtIn?: boolean } = {}): Promise<Network> {
  const nodes = await deps.store.listNodes();
  if (spec.node) {
    if (!nodes.some((n) => nameKey(n.name) === nameKey(spec.node))) {
      throw notFound(`node ${spec.node} is not registered; pick one from "ctmgr node ls" for --node`);
    }
  }
  // The hosts a bridge network lives on: its routes must stay clear of the bridge's subnet,
  // or the bridge would take their traffic on that host.
  const hosts = spec.node ? nodes.filter((n) => nameKey(n.name) === nameKey(spec.node)) : nodes;
  const routes = (list: readonly Node[]): Occupied[] =>
    list.flatMap((node) => [
      ...node.routes.map((r): Occupied => ({ cidr: parseCidr(r, 'route', false), what: `route on node ${node.name}` })),
      { cidr: parseCidr(`${node.addr}/32`, 'address', false), what: `the address of node ${node.name}` },
    ]);
  // A host's Docker holding the name for another driver: ctnet's network could not exist in
  // that Docker; refused before anything is made anywhere.
  if (!opts.builtIn) {
    const held = nodes.filter((n) => Object.keys(n.dockerNetworks ?? {}).some((d) => nameKey(d) === nameKey(spec.name)));
    if (held.length > 0) {
      const where = held.map((n) => `node ${n.name} (a ${Object.entries(n.dockerNetworks!).find(([d]) => nameKey(d) === nameKey(spec.name))![1]} network)`).join(', ');
      throw failedPrecondition(`Docker already has a network named ${spec.name} on ${where}; choose another name, or remove it there ("docker network rm ${spec.name}")`);
    }
  }
  // Optimistic: list, decide, then commit only if nobody changed the network table meanwhile.
  for (let attempt = 0; attempt < 8; attempt++) {
    const { networks, revision } = await deps.store.listNetworks();
    const sameName = networks.find((n) => n.name.toLowerCase() === spec.name.toLowerCase());
    if (sameName) {
      throw alreadyExists(`a network named ${spec.name} already exists (id ${sameName.id.slice(0, 12)}); choose another name or remove it first`);
    }
    const taken = networks.map((n): Occupied => ({ cidr: parseCidr(n.subnet), what: `network ${n.name}` }));
    let subnet;
    if (spec.subnet) {
      checkSubnetFree(spec.subnet, taken);
      // An overlay's or bridge's gateway sits on a bridge on each host it lives on: a subnet
      // over the host's own address or routes would take their traffic there (cutting the host
      // off the manager). A macvlan network shares the host's segment on purpose.
      if (spec.driver !== 'macvlan' && !opts.builtIn) {
        const clash = findOverlap(spec.subnet, routes(hosts));
        if (clash) {
          throw invalidArgument(
            `subnet ${formatCidr(spec.subnet)} overlaps ${formatCidr(clash.cidr)} (${clash.what}): a bridge with it would take that traffic on the host; pick a subnet clear of the hosts' addresses and routes (see "ctmgr node inspect")`,
          );
        }
      }
      subnet = spec.subnet;
    } else {
      const avoid: Occupied[] = [
        ...taken,
        ...deps.config.excludes.map((cidr): Occupied => ({ cidr, what: 'excluded range' })),
        ...routes(nodes),
      ];
      subnet = pickNetworkSubnet(deps, spec, avoid);
    }
    const vnis = new Set(networks.filter((n) => n.driver === 'overlay').map((n) => n.vni));
    let vni = 0;
    if (spec.driver === 'overlay') {
      if (spec.vni !== undefined) {
        const owner = networks.find((n) => n.driver === 'overlay' && n.vni === spec.vni);
        if (owner) throw alreadyExists(`VNI ${spec.vni} is already used by network ${owner.name}; pick another -o vni= or omit it`);
        vni = spec.vni;
      } else vni = pickVni(vnis);
    }
    let net = buildNetwork(spec, { id: newId(), subnet, vni, createdAt: new Date(deps.clock.now()).toISOString() });
    // A pooled bridge network: the hosts registered now get their subnets at once (shown by
    // inspect); a host that joins later gets one with its first container there.
    if (isPooled(net)) {
      for (const node of nodes) {
        try {
          net = { ...net, hostSubnets: { ...net.hostSubnets, [nameKey(node.name)]: formatCidr(pickHostSubnet(net, node.name, node.routes)) } };
        } catch {
          // No room for this host now (its routes cover the pool): it gets told when a container lands there.
        }
      }
    }
    if (await deps.store.createNetwork(net, revision)) {
      deps.log.info('network created', { name: net.name, id: net.id, driver: net.driver, subnet: net.subnet, vni: net.vni });
      return net;
    }
  }
  throw new CtnetError(ErrorCode.Aborted, `network table kept changing while creating ${spec.name}; retry`);
}

/**
 * A subnet from the default pools: a /24 (--default-addr-pool-size) for an overlay or a
 * bridge network pinned to one node; for a bridge network on every host, a pool 256 times
 * larger (a /16), so each host's /24 comes out of it.
 */
function pickNetworkSubnet(deps: ManagerDeps, spec: NetworkSpec, avoid: readonly Occupied[]): Cidr {
  const size = deps.config.defaultAddrPoolSize;
  if (spec.driver !== 'bridge' || spec.node) return pickSubnet(deps.config.defaultAddrPools, size, avoid);
  const smallest = Math.min(...deps.config.defaultAddrPools.map((p) => p.prefix));
  for (let pool = Math.max(size - 8, smallest); pool < size; pool++) {
    try {
      return pickSubnet(deps.config.defaultAddrPools, pool, avoid);
    } catch {
      // not a block this large left: try a smaller one
    }
  }
  return pickSubnet(deps.config.defaultAddrPools, size, avoid);
}

/**
 * Docker's docker0: a bridge network named "bridge" on every host, from --default-bridge-pool.
 * Made once per cluster; several managers starting together settle it through the network
 * table's guard (the loser finds the name taken).
 */
export async function ensureDefaultBridge(deps: ManagerDeps): Promise<Network> {
  const existing = (await deps.store.listNetworks()).networks.find((n) => nameKey(n.name) === DEFAULT_BRIDGE);
  if (existing) return existing;
  const spec: NetworkSpec = {
    ...parseNetworkRequest({ name: DEFAULT_BRIDGE, driver: 'bridge', subnet: formatCidr(deps.config.defaultBridgePool) }),
    options: { [DEFAULT_BRIDGE_OPTION]: 'true' },
  };
  try {
    return await createFromSpec(deps, spec, { builtIn: true });
  } catch (err) {
    const now = (await deps.store.listNetworks()).networks.find((n) => nameKey(n.name) === DEFAULT_BRIDGE);
    if (now) return now;
    throw err;
  }
}

/** Resolves a network by name, id or unique id prefix; the store is the authority. */
export async function findNetwork(deps: ManagerDeps, nameOrId: string): Promise<Network> {
  const text = nameOrId.trim();
  if (text === '') throw notFound('no network given; pass a network name or id');
  const cached = deps.view.networkByNameOrId(text);
  if (cached) return cached;
  const { networks } = await deps.store.listNetworks();
  const lower = text.toLowerCase();
  const byPrefix = text.length >= 4 ? networks.filter((n) => n.id.startsWith(text)) : [];
  const found =
    networks.find((n) => n.id === text) ??
    networks.find((n) => n.name.toLowerCase() === lower) ??
    (byPrefix.length === 1 ? byPrefix[0] : undefined);
  if (!found) throw notFound(`network ${text} not found; list networks with "ctmgr network ls"`);
  return found;
}

export async function listNetworks(deps: ManagerDeps): Promise<ListNetworksResponse> {
  const [{ networks }, endpoints] = await Promise.all([deps.store.listNetworks(), deps.store.listEndpoints()]);
  const counts = new Map<string, number>();
  for (const ep of endpoints) counts.set(ep.networkId, (counts.get(ep.networkId) ?? 0) + 1);
  networks.sort((a, b) => a.name.localeCompare(b.name));
  return { networks: networks.map((n) => ({ network: networkToWire(n), endpoints: counts.get(n.id) ?? 0 })) };
}

/** How many addresses a network can hand out: a pooled bridge network's are its hosts' subnets together. */
export function assignableAddresses(net: Network): number {
  const parts = isPooled(net) ? Object.keys(net.hostSubnets ?? {}).map((node) => networkOnNode(net, node)!) : [net];
  return parts.reduce((sum, part) => sum + assignableCount(planAddresses(part)), 0);
}

export async function inspectNetwork(deps: ManagerDeps, req: InspectNetworkRequest): Promise<NetworkDetail> {
  const net = await findNetwork(deps, req.nameOrId);
  const [endpoints, { claims }] = await Promise.all([deps.store.listEndpoints(net.id), deps.store.listClaims(net.id)]);
  const total = assignableAddresses(net);
  endpoints.sort((a, b) => a.name.localeCompare(b.name));
  const problems: Record<string, string> = {};
  // What hosts reported (kept on their node records): the view has them, no etcd read needed.
  for (const node of deps.view.nodes.values()) {
    const problem = node.problems?.[net.id];
    if (problem) problems[node.name] = problem;
  }
  return {
    network: networkToWire(net),
    usage: { total, allocated: claims.length, free: Math.max(0, total - claims.length) },
    endpoints: endpoints.map(endpointToWire),
    problems,
  };
}

export async function removeNetwork(deps: ManagerDeps, req: RemoveNetworkRequest): Promise<RemoveNetworkResponse> {
  const net = await findNetwork(deps, req.nameOrId);
  if (isDefaultBridge(net)) throw failedPrecondition(`${net.name} is the default network (like docker0) and cannot be removed`);
  const outcome = await deps.store.removeNetwork(net);
  if (!outcome.ok) {
    const names = outcome.endpoints.map((e) => `${e.name} (node ${e.node})`);
    const shown = names.slice(0, 10).join(', ') + (names.length > 10 ? ` and ${names.length - 10} more` : '');
    throw failedPrecondition(`network ${net.name} still has ${names.length} endpoint(s): ${shown}; remove them first`);
  }
  deps.log.info('network removed', { name: net.name, id: net.id });
  return { id: net.id };
}
