import { randomBytes } from 'node:crypto';
import {
  CtnetError,
  DOCKER_NETWORK_OPTION,
  DOCKER_ORIGIN_LABEL,
  ErrorCode,
  bridgeName,
  failedPrecondition,
  findOverlap,
  formatCidr,
  formatIPv4,
  invalidArgument,
  nameKey,
  overlayMtu,
  parseAddressRequest,
  parseCidr,
  parseEndpointCreate,
  parseEndpointRef,
  parseIPv4,
  parseJoin,
  parseNetworkCreate,
  parseNetworkId,
  parsePoolRequest,
  pickSubnet,
  poolId,
  unavailable,
  type Cidr,
  type DockerMethod,
  type Endpoint,
  type Logger,
  type Network,
  type Occupied,
  parseProgramConnectivity,
} from '@ctnet/core';
import { endpointFromWire, type CreateEndpointRequest, type CreateNetworkRequest, type UpdateEndpointRequest, type Endpoint as WireEndpoint, type Network as WireNetwork } from '@ctnet/proto';
import type { LocalState } from '../state.js';
import type { DockerBindings } from './bindings.js';

/** What the plugin asks of the managers, as this node (its certificate allows exactly this). */
export interface DockerManagerCalls {
  createEndpoint(req: CreateEndpointRequest): Promise<WireEndpoint>;
  deleteEndpoint(network: string, name: string): Promise<unknown>;
  createNetwork(req: CreateNetworkRequest): Promise<WireNetwork>;
  removeNetwork(nameOrId: string): Promise<unknown>;
  updateEndpoint(req: UpdateEndpointRequest): Promise<WireEndpoint>;
}

export interface DockerPluginDeps {
  readonly node: string;
  readonly underlayMtu: number;
  /** The resolver address Docker's containers forward to: routed through each network's gateway. */
  readonly dnsAddr: string;
  readonly state: LocalState;
  readonly manager: DockerManagerCalls;
  readonly bindings: DockerBindings;
  /** The stream to a manager is up and a snapshot has arrived. */
  ready(): boolean;
  /** Resolves once check() holds (checked after every reconcile run and state change). */
  waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void>;
  bridgeExists(bridge: string): boolean;
  /** Makes the veth pair of a Docker endpoint: host end on the bridge, the peer (returned) left for Docker. */
  plug(ep: { id: string; networkId: string; mac: string; bridge: string; mtu: number }): Promise<string>;
  /** Deletes the pair (wherever its peer is); nothing to delete is fine. */
  unplug(endpointId: string): Promise<void>;
  /** A network made through this host's Docker: learn its name from Docker and make it in the cluster. */
  adopt(dockerNetworkId: string): void;
  readonly log: Logger;
}

const WAIT_MS = 20_000;
const DOCKER_ADDRESS_SPACE = 'ctnet';

type Json = Record<string, unknown>;


/** The remote driver's verbs over this agent's state and managers; each returns the JSON answer or throws a CtnetError. */
export function createDockerPlugin(deps: DockerPluginDeps): (method: DockerMethod, body: Json) => Promise<Json> {
  const { state, bindings } = deps;
  const bySubnet = (pool: Cidr): Network | undefined => {
    const text = formatCidr(pool);
    for (const n of state.networks.values()) if (n.subnet === text) return n;
    return undefined;
  };
  const networkOf = (dockerId: string): Network => {
    requireReady(); // before the first snapshot nothing is known: "try again", not "remove it"
    const b = bindings.network(dockerId);
    const net = b?.ctnet ? state.networks.get(b.ctnet) : undefined;
    if (!net) throw failedPrecondition(`Docker network ${dockerId.slice(0, 12)} is not (or no longer) a ctnet network on node ${deps.node}; remove it with "docker network rm" and create it again`);
    return net;
  };
  const requireReady = (): void => {
    if (!deps.ready()) throw unavailable(`the ctnet agent on ${deps.node} is not connected to a manager yet; try again in a moment (check "ctagent" on this host)`);
  };
  /** Subnets in use and the hosts' own routes: a new network must stay clear of both. */
  const occupied = (): Occupied[] => [
    ...[...state.networks.values()].map((n): Occupied => ({ cidr: parseCidr(n.subnet), what: `ctnet network ${n.name}` })),
    ...[...state.nodes.values()].flatMap((node) => [
      ...node.routes.map((r): Occupied => ({ cidr: parseCidr(r, 'route', false), what: `a route on node ${node.name}` })),
      { cidr: parseCidr(`${node.addr}/32`, 'address', false), what: `the address of node ${node.name}` },
    ]),
  ];
  /** Docker endpoints the IPAM claimed and the driver has not bound yet, by "<network>/<ip>". */
  const claimed = new Map<string, Endpoint>();
  const localDockerEndpoint = (networkId: string, ip: string): Endpoint | undefined => {
    const c = claimed.get(`${networkId}/${ip}`);
    if (c) return c;
    for (const e of state.endpoints.values()) {
      if (e.networkId === networkId && e.ip === ip && e.origin === 'docker' && nameKey(e.node) === nameKey(deps.node)) return e;
    }
    return undefined;
  };

  const requestPool = async (body: Json): Promise<Json> => {
    const p = parsePoolRequest(body);
    if (p.v6) throw invalidArgument('ctnet networks are IPv4 only; create the network without --ipv6');
    const mirrored = p.options[DOCKER_NETWORK_OPTION];
    if (mirrored) {
      const net = state.networks.get(mirrored);
      if (!net) throw failedPrecondition(`ctnet network ${mirrored} does not exist (any more)`);
      const subnet = parseCidr(net.subnet);
      return { PoolID: poolId(subnet), Pool: net.subnet, Data: { 'com.docker.network.gateway': `${net.gateway}/${subnet.prefix}` } };
    }
    requireReady();
    if (p.ipRange) throw invalidArgument('--ip-range is not supported through Docker yet; create the network with "ctmgr network create --ip-range" instead, and it appears in Docker by itself');
    let subnet = p.subnet;
    if (subnet) {
      const clash = findOverlap(subnet, occupied());
      if (clash) throw invalidArgument(`subnet ${formatCidr(subnet)} overlaps ${formatCidr(clash.cidr)} (${clash.what}); pick a --subnet clear of it (see "ctmgr network ls")`);
    } else {
      subnet = pickSubnet([parseCidr('10.0.0.0/8')], 24, occupied());
    }
    return { PoolID: poolId(subnet), Pool: formatCidr(subnet), Data: {} };
  };

  const requestAddress = async (body: Json): Promise<Json> => {
    const a = parseAddressRequest(body);
    const net = bySubnet(a.pool);
    if (a.gateway) {
      const gw = net ? net.gateway : a.address || formatIPv4(a.pool.base + 1);
      if (net && a.address && a.address !== net.gateway) throw invalidArgument(`network ${net.name} has gateway ${net.gateway}, not ${a.address}`);
      return { Address: `${gw}/${a.pool.prefix}`, Data: {} };
    }
    // A container's request always carries its MAC (RequiresMACAddress: Docker makes one up when
    // none is given); one without is --aux-address, which ctnet takes only through ctmgr.
    if (!a.mac) throw invalidArgument('--aux-address is not taken through Docker; create the network with "ctmgr network create --aux-address …" and it appears in Docker by itself');
    requireReady();
    // A network made through Docker a moment ago: its cluster network is being made.
    const target = net ?? (await deps.waitUntil(() => bySubnet(a.pool) !== undefined, WAIT_MS, `network ${formatCidr(a.pool)} to be created in the cluster`), bySubnet(a.pool)!);
    const ep = await deps.manager.createEndpoint({
      network: target.id,
      node: deps.node,
      name: `dk-${randomBytes(6).toString('hex')}`,
      aliases: [],
      ip: a.address,
      mac: a.mac,
      origin: 'docker',
    });
    const domain = endpointFromWire(ep);
    claimed.set(`${target.id}/${ep.ip}`, domain);
    setTimeout(() => claimed.delete(`${target.id}/${ep.ip}`), 60_000).unref();
    return { Address: `${ep.ip}/${a.pool.prefix}`, Data: {} };
  };

  const releaseAddress = async (body: Json): Promise<Json> => {
    const a = parseAddressRequest(body);
    const net = bySubnet(a.pool);
    if (!net || !a.address || a.address === net.gateway) return {}; // the gateway is the network's, not claimed
    const ep = localDockerEndpoint(net.id, a.address);
    if (!ep) return {}; // released already
    // Docker drops the endpoint (DeleteEndpoint) before it releases the address: a binding that
    // still names this endpoint means the address went to another container meanwhile and this
    // is a late retry.
    if ([...bindings.endpoints().values()].some((b) => b.network === net.id && b.name === ep.name)) return {};
    requireReady();
    claimed.delete(`${net.id}/${ep.ip}`);
    await deps.unplug(ep.id);
    await deps.manager.deleteEndpoint(net.id, ep.name).catch((err: unknown) => {
      if (!(err instanceof CtnetError && err.code === ErrorCode.NotFound)) throw err;
    });
    return {};
  };

  const createNetwork = async (body: Json): Promise<Json> => {
    const c = parseNetworkCreate(body);
    if (c.addressSpace !== DOCKER_ADDRESS_SPACE) {
      throw invalidArgument('a ctnet network needs ctnet\'s IPAM (addresses are handed out cluster-wide); add --ipam-driver ctnet');
    }
    if (c.ctnetNetwork) {
      // The mirror made it in this host's Docker for an existing ctnet network.
      if (!state.networks.has(c.ctnetNetwork)) throw failedPrecondition(`ctnet network ${c.ctnetNetwork} does not exist (any more)`);
      await bindings.setNetwork(c.networkId, { ctnet: c.ctnetNetwork });
      return {};
    }
    requireReady();
    const clash = findOverlap(c.subnet, occupied());
    if (clash) throw invalidArgument(`subnet ${formatCidr(c.subnet)} overlaps ${formatCidr(clash.cidr)} (${clash.what}); pick another --subnet`);
    const gateway = c.gateway || formatIPv4(c.subnet.base + 1);
    // Docker passes no name to drivers: the cluster network is made once Docker has stored it (adopt).
    await bindings.setNetwork(c.networkId, { ctnet: '', pending: { subnet: formatCidr(c.subnet), gateway, internal: c.internal, options: c.options } });
    deps.adopt(c.networkId);
    return {};
  };

  const deleteNetwork = async (body: Json): Promise<Json> => {
    const id = parseNetworkId(body);
    const b = bindings.network(id);
    const net = b?.ctnet ? state.networks.get(b.ctnet) : undefined;
    if (!net) {
      await bindings.dropNetwork(id); // pending, unknown, or gone from the cluster already (the mirror removes it)
      return {};
    }
    requireReady();
    const users = [...state.endpoints.values()].filter((e) => e.networkId === net.id && e.node !== '');
    if (users.length > 0) {
      const where = users.slice(0, 5).map((e) => `${e.aliases[0] ?? e.name} on ${e.node}`).join(', ');
      // Docker removes its own copy whatever a driver answers here (it honours no driver error
      // on delete): the cluster keeps the network, and the sync puts it back in this Docker.
      await bindings.dropNetwork(id);
      throw failedPrecondition(
        `network ${net.name} is in use by ${users.length} endpoint(s) in the cluster: ${where}${users.length > 5 ? ', …' : ''}; it stays, and comes back in this host's Docker: remove those containers first`,
      );
    }
    await deps.manager.removeNetwork(net.id);
    await bindings.dropNetwork(id);
    return {};
  };

  const createEndpoint = async (body: Json): Promise<Json> => {
    const e = parseEndpointCreate(body);
    const net = networkOf(e.networkId);
    if (!e.address) throw invalidArgument('the endpoint has no address: create the network with --ipam-driver ctnet');
    const ep = localDockerEndpoint(net.id, e.address);
    if (!ep) throw failedPrecondition(`address ${e.address} on network ${net.name} was not handed out by ctnet on ${deps.node}; create the network with --ipam-driver ctnet`);
    if (e.mac && e.mac !== ep.mac) throw invalidArgument(`MAC ${e.mac} differs from ${ep.mac} recorded for ${e.address}; pass --mac-address once, to the network given with --network`);
    remember(bindings.setEndpoint(e.endpointId, { network: net.id, name: ep.name, id: ep.id, ip: ep.ip, mac: ep.mac, at: Date.now() }));
    claimed.delete(`${net.id}/${ep.ip}`);
    // Only what Docker left empty may be answered.
    return { Interface: e.mac ? {} : { MacAddress: ep.mac } };
  };

  const join = async (body: Json): Promise<Json> => {
    const j = parseJoin(body);
    const b = bindings.endpoint(j.endpointId);
    if (!b) throw failedPrecondition(`endpoint ${j.endpointId.slice(0, 12)} is unknown to ctnet on ${deps.node}; remove and recreate the container`);
    const net = networkOf(j.networkId);
    const bridge = bridgeName(net.id);
    // The first endpoint of the network on this host: its bridge is made by the run the new endpoint started.
    if (!deps.bridgeExists(bridge)) await deps.waitUntil(() => deps.bridgeExists(bridge), WAIT_MS, `the bridge of network ${net.name} on ${deps.node}`);
    const srcName = await deps.plug({ id: b.id, networkId: net.id, mac: b.mac, bridge, mtu: overlayMtu(net, deps.underlayMtu) });
    // The resolver address is routed through the first ctnet network a sandbox joins (whatever
    // its default route: Docker's bridge, an --internal network without one); a second route to
    // it would make Docker fail the join ("file exists").
    const routed = [...bindings.endpoints()].some(([id, o]) => id !== j.endpointId && o.sandbox === j.sandboxKey && o.routesDns);
    remember(bindings.setEndpoint(j.endpointId, { ...b, sandbox: j.sandboxKey, routesDns: !routed }));
    return {
      InterfaceName: { SrcName: srcName, DstPrefix: 'eth' },
      // An --internal network gives no default route (Docker's rule), but its names resolve.
      ...(!net.internal && { Gateway: net.gateway }),
      StaticRoutes: routed ? [] : [{ Destination: `${deps.dnsAddr}/32`, RouteType: 0, NextHop: net.gateway }],
      DisableGatewayService: true,
    };
  };

  const leave = async (body: Json): Promise<Json> => {
    const r = parseEndpointRef(body);
    const b = bindings.endpoint(r.endpointId);
    if (b) {
      await deps.unplug(b.id);
      const { sandbox: _s, routesDns: _r, ...left } = b;
      await bindings.setEndpoint(r.endpointId, left);
    }
    return {};
  };

  const deleteEndpoint = async (body: Json): Promise<Json> => {
    const r = parseEndpointRef(body);
    const b = bindings.endpoint(r.endpointId);
    if (b) await deps.unplug(b.id);
    await bindings.dropEndpoint(r.endpointId);
    return {};
  };

  /** An endpoint binding is written behind the answer (the map in memory is current at once). */
  const remember = (write: Promise<void>): void => void write.catch((err: unknown) => deps.log.warn('could not save the Docker bindings', { error: String(err) }));

  /**
   * -p: the host ports are claimed in the cluster (one holder per port and node, by an etcd
   * transaction; a host port 0 is chosen there), and every host's nftables follow from the state.
   */
  const publish = async (body: Json): Promise<Json> => {
    const { ports, ...r } = parseProgramConnectivity(body);
    const b = bindings.endpoint(r.endpointId);
    if (!b) throw failedPrecondition(`endpoint ${r.endpointId.slice(0, 12)} is unknown to ctnet on ${deps.node}`);
    if (ports.length === 0) return {};
    requireReady();
    await deps.manager.updateEndpoint({ network: b.network, name: b.name, aliases: [], setAliases: false, ports: ports.map((p) => ({ ...p })), setPorts: true });
    return {};
  };
  const unpublish = async (body: Json): Promise<Json> => {
    const r = parseEndpointRef(body);
    const b = bindings.endpoint(r.endpointId);
    if (!b) return {};
    requireReady();
    await deps.manager.updateEndpoint({ network: b.network, name: b.name, aliases: [], setAliases: false, ports: [], setPorts: true }).catch((err: unknown) => {
      if (!(err instanceof CtnetError && err.code === ErrorCode.NotFound)) throw err;
    });
    return {};
  };
  return async (method, body) => {
    switch (method) {
      case 'Plugin.Activate':
        return { Implements: ['NetworkDriver', 'IpamDriver'] };
      case 'NetworkDriver.GetCapabilities':
        // Local: each host's Docker keeps its own copy (the agents keep them in step); global
        // connectivity: its endpoints reach each other across hosts.
        return { Scope: 'local', ConnectivityScope: 'global' };
      case 'IpamDriver.GetCapabilities':
        // The MAC with the address: the cluster records it before Docker sets it.
        return { RequiresMACAddress: true, RequiresRequestReplay: false };
      case 'IpamDriver.GetDefaultAddressSpaces':
        return { LocalDefaultAddressSpace: DOCKER_ADDRESS_SPACE, GlobalDefaultAddressSpace: DOCKER_ADDRESS_SPACE };
      case 'IpamDriver.RequestPool':
        return requestPool(body);
      case 'IpamDriver.ReleasePool':
        return {};
      case 'IpamDriver.RequestAddress':
        return requestAddress(body);
      case 'IpamDriver.ReleaseAddress':
        return releaseAddress(body);
      case 'NetworkDriver.CreateNetwork':
        return createNetwork(body);
      case 'NetworkDriver.DeleteNetwork':
        return deleteNetwork(body);
      case 'NetworkDriver.CreateEndpoint':
        return createEndpoint(body);
      case 'NetworkDriver.EndpointOperInfo':
        // dockerd reads port mappings only from its own drivers here (typed, not JSON): a
        // remote driver's show in "ctmgr network inspect", not in "docker port".
        parseEndpointRef(body);
        return { Value: {} };
      case 'NetworkDriver.DeleteEndpoint':
        return deleteEndpoint(body);
      case 'NetworkDriver.Join':
        return join(body);
      case 'NetworkDriver.Leave':
        return leave(body);
      case 'NetworkDriver.ProgramExternalConnectivity':
        return publish(body);
      case 'NetworkDriver.RevokeExternalConnectivity':
        return unpublish(body);
      case 'NetworkDriver.AllocateNetwork':
      case 'NetworkDriver.FreeNetwork':
      case 'NetworkDriver.DiscoverNew':
      case 'NetworkDriver.DiscoverDelete':
        return {};
      default:
        throw invalidArgument(`unknown call ${String(method)}`);
    }
  };
}

/** The cluster network for a network made through Docker, once Docker has told its name. */
export function dockerNetworkRequest(node: string, name: string, pending: NonNullable<import('./bindings.js').NetworkBinding['pending']>): CreateNetworkRequest {
  const options: Record<string, string> = {};
  for (const [k, v] of Object.entries(pending.options)) if (k !== DOCKER_NETWORK_OPTION) options[k] = v;
  parseIPv4(pending.gateway, 'gateway');
  return {
    name,
    driver: 'overlay',
    subnet: pending.subnet,
    gateway: pending.gateway,
    ipRange: '',
    auxAddresses: {},
    attachable: true,
    internal: pending.internal,
    options,
    labels: { [DOCKER_ORIGIN_LABEL]: 'docker', 'ctnet.docker.node': node },
    node: '',
  };
}
