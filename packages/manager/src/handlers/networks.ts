import { randomUUID } from 'node:crypto';
import {
  alreadyExists,
  assignableCount,
  buildNetwork,
  checkSubnetFree,
  CtnetError,
  ErrorCode,
  failedPrecondition,
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
  });
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
      subnet = spec.subnet;
    } else {
      const nodes = await deps.store.listNodes();
      const avoid: Occupied[] = [
        ...taken,
        ...deps.config.excludes.map((cidr): Occupied => ({ cidr, what: 'excluded range' })),
        ...nodes.flatMap((node) => node.routes.map((r): Occupied => ({ cidr: parseCidr(r, 'route', false), what: `route on node ${node.name}` }))),
      ];
      subnet = pickSubnet(deps.config.defaultAddrPools, deps.config.defaultAddrPoolSize, avoid);
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
    const net = buildNetwork(spec, { id: newId(), subnet, vni, createdAt: new Date(deps.clock.now()).toISOString() });
    if (await deps.store.createNetwork(net, revision)) {
      deps.log.info('network created', { name: net.name, id: net.id, subnet: net.subnet, vni: net.vni });
      return networkToWire(net);
    }
  }
  throw new CtnetError(ErrorCode.Aborted, `network table kept changing while creating ${spec.name}; retry`);
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

export async function inspectNetwork(deps: ManagerDeps, req: InspectNetworkRequest): Promise<NetworkDetail> {
  const net = await findNetwork(deps, req.nameOrId);
  const [endpoints, { claims }] = await Promise.all([deps.store.listEndpoints(net.id), deps.store.listClaims(net.id)]);
  const total = assignableCount(planAddresses(net));
  endpoints.sort((a, b) => a.name.localeCompare(b.name));
  return {
    network: networkToWire(net),
    usage: { total, allocated: claims.length, free: Math.max(0, total - claims.length) },
    endpoints: endpoints.map(endpointToWire),
  };
}

export async function removeNetwork(deps: ManagerDeps, req: RemoveNetworkRequest): Promise<RemoveNetworkResponse> {
  const net = await findNetwork(deps, req.nameOrId);
  const outcome = await deps.store.removeNetwork(net);
  if (!outcome.ok) {
    const names = outcome.endpoints.map((e) => `${e.name} (node ${e.node})`);
    const shown = names.slice(0, 10).join(', ') + (names.length > 10 ? ` and ${names.length - 10} more` : '');
    throw failedPrecondition(`network ${net.name} still has ${names.length} endpoint(s): ${shown}; remove them first`);
  }
  deps.log.info('network removed', { name: net.name, id: net.id });
  return { id: net.id };
}
