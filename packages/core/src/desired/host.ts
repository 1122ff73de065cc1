import type { Container } from '../model/container.js';
import type { Endpoint } from '../model/endpoint.js';
import type { Network } from '../model/network.js';
import type { Node } from '../model/node.js';
import { nameKey } from '../model/names.js';
import { networkOnNode } from '../model/local.js';
import { parseCidr, parseIPv4 } from '../net/ipv4.js';
import { macForIPv4 } from '../model/endpoint.js';
import { serviceTraffic, type ServiceTraffic } from '../policy/traffic.js';

/**
 * What one host should have, computed from the cluster's desired state (pure). A network is
 * present on a host while a local endpoint uses it (as Swarm creates networks on a node
 * lazily) or the routing mesh forwards to it. An overlay network gets a bridge with the
 * anycast gateway, a VXLAN device, and a permanent FDB and neighbour entry per remote
 * endpoint; a bridge network only the bridge, with this host's own subnet; a macvlan network
 * nothing on the host (its sandboxes hang off the parent interface directly).
 */
export interface HostContext {
  readonly node: string;
  readonly advertiseAddr: string;
  readonly underlayMtu: number;
  readonly vxlanPort: number;
}

/** A network's bridge on this host: an overlay's (with its VXLAN device and entries) or a local bridge network's (vxlan ''). */
export interface DesiredOverlay {
  readonly networkId: string;
  readonly bridge: string;
  readonly vxlan: string; // '' for a bridge network: nothing leaves the host

  readonly vni: number;
  readonly port: number; // VXLAN UDP port (cluster-wide)
  readonly local: string; // this host's VTEP address
  readonly mtu: number;
  readonly gatewayCidr: string; // gateway/prefix, on the bridge
  /**
   * Fixed, derived from the gateway address (the same on every host, as the gateway is anycast):
   * a bridge left to itself takes the lowest MAC of its ports, so adding a sandbox would change
   * the gateway's MAC under every local container's ARP cache and cut them off for seconds.
   */
  readonly bridgeMac: string;
  readonly fdb: readonly { readonly mac: string; readonly dst: string }[];
  readonly neigh: readonly { readonly ip: string; readonly mac: string }[];
}

/** One interface of a local sandbox. */
export interface DesiredInterface {
  readonly endpointId: string;
  readonly networkId: string;
  /** veth (overlay, bridge: host end on the network's bridge) or macvlan (a sub-interface of the host's `parent`). */
  readonly kind: 'veth' | 'macvlan';
  readonly parent: string; // macvlan only
  readonly bridge: string; // '' for macvlan
  readonly hostVeth: string; // host end, enslaved to the bridge; '' for macvlan
  readonly ifname: string; // inside the sandbox: eth0, eth1, ... by attach order
  readonly mac: string;
  readonly cidr: string; // address/prefix
  readonly gateway: string;
  readonly mtu: number;
}

export interface DesiredSandbox {
  readonly container: Container;
  /** The namespace its process runs in; '' for --network host. */
  readonly netns: string;
  /** Whether this container's sandbox is its own (created and deleted with it) or shared (container:X) or none (host). */
  readonly ownsNetns: boolean;
  readonly interfaces: readonly DesiredInterface[];
}

export interface DesiredHost {
  readonly overlays: readonly DesiredOverlay[];
  readonly sandboxes: readonly DesiredSandbox[];
  /**
   * Host ends of veths whose other end a runtime holds (Docker's containers: the plugin makes
   * the pair at Join, Docker moves the peer into its sandbox). Kept on their bridge while they
   * exist, never made by a run (Docker would not take a new peer), removed with their endpoint.
   */
  readonly plugged?: readonly PluggedVeth[];
}

export interface PluggedVeth {
  readonly endpointId: string;
  readonly networkId: string;
  readonly hostVeth: string;
  readonly bridge: string;
  readonly mtu: number;
}

/** The name of the end Docker moves into its sandbox (no owned prefix: a run never takes it for stale). */
export const pluggedPeerName = (endpointId: string): string => `ctdk${endpointId.slice(0, 8)}`;

export interface ClusterState {
  readonly networks: ReadonlyMap<string, Network>;
  readonly endpoints: ReadonlyMap<string, Endpoint>;
  readonly nodes: ReadonlyMap<string, Node>;
  readonly containers: ReadonlyMap<string, Container>;
}

/** Interface names are derived from ids and fit the kernel's 15 characters, so a restarted agent recognises its own. */
export const DEVICE_PREFIX = { bridge: 'ctbr-', vxlan: 'ctvx-', veth: 'ctve-', macvlan: 'ctmv-' } as const;
/** A macvlan sub-interface's name on the host, for the moment before it moves into its sandbox (one left behind is removed). */
export const macvlanTempName = (endpointId: string): string => `${DEVICE_PREFIX.macvlan}${endpointId.slice(0, 8)}`;
export const bridgeName = (networkId: string): string => `${DEVICE_PREFIX.bridge}${networkId.slice(0, 8)}`;
export const vxlanName = (networkId: string): string => `${DEVICE_PREFIX.vxlan}${networkId.slice(0, 8)}`;
export const hostVethName = (endpointId: string): string => `${DEVICE_PREFIX.veth}${endpointId.slice(0, 8)}`;
export const isOwnedDevice = (name: string): boolean => Object.values(DEVICE_PREFIX).some((p) => name.startsWith(p));

export function overlayMtu(net: Network, underlayMtu: number): number {
  if (net.mtu > 0) return net.mtu;
  return net.driver === 'overlay' ? underlayMtu - 50 : underlayMtu; // VXLAN over IPv4 adds 50 bytes
}

export function desiredHost(
  state: ClusterState,
  ctx: HostContext,
  netnsPrefix: string,
  /** Who serves what; the caller passes it when it needs it too (computed once per run). */
  traffic: ServiceTraffic = serviceTraffic(state),
): DesiredHost {
  const me = nameKey(ctx.node);
  const local = [...state.endpoints.values()].filter((e) => nameKey(e.node) === me);
  const present = new Set(local.map((e) => e.networkId));
  // The routing mesh forwards a published port from every node to the tasks over their
  // network, so that network is present on every node while such a service has tasks.
  for (const m of traffic.mesh) present.add(m.networkId);
  const overlays: DesiredOverlay[] = [];
  const plugged: PluggedVeth[] = [];
  for (const id of [...present].sort()) {
    const stored = state.networks.get(id);
    // macvlan: the sandboxes sit on the host's own interface; the host has nothing to add.
    const net = stored && (stored.driver === 'overlay' || stored.driver === 'bridge') ? networkOnNode(stored, ctx.node) : undefined;
    if (!net) continue;
    const fdb: { mac: string; dst: string }[] = [];
    const neigh: { ip: string; mac: string }[] = [];
    if (net.driver === 'overlay') {
      for (const ep of state.endpoints.values()) {
        if (ep.networkId !== id || nameKey(ep.node) === me) continue;
        const node = state.nodes.get(nameKey(ep.node));
        if (!node) continue; // its host is not registered (yet): nothing to point at
        fdb.push({ mac: ep.mac, dst: node.addr });
        neigh.push({ ip: ep.ip, mac: ep.mac });
      }
    }
    overlays.push({
      networkId: id,
      bridge: bridgeName(id),
      vxlan: net.driver === 'overlay' ? vxlanName(id) : '',
      vni: net.vni,
      port: ctx.vxlanPort,
      local: ctx.advertiseAddr,
      mtu: overlayMtu(net, ctx.underlayMtu),
      gatewayCidr: `${net.gateway}/${parseCidr(net.subnet).prefix}`,
      bridgeMac: macForIPv4(parseIPv4(net.gateway)),
      fdb,
      neigh,
    });
    for (const ep of local) {
      if (ep.networkId !== id || ep.origin !== 'docker' || ep.container !== '') continue;
      plugged.push({ endpointId: ep.id, networkId: id, hostVeth: hostVethName(ep.id), bridge: bridgeName(id), mtu: overlayMtu(net, ctx.underlayMtu) });
    }
  }

  const sandboxes: DesiredSandbox[] = [];
  for (const c of state.containers.values()) {
    if (nameKey(c.node) !== me) continue;
    sandboxes.push(desiredSandbox(c, local.filter((e) => e.container === c.id), state.networks, ctx, netnsPrefix));
  }
  sandboxes.sort((a, b) => a.container.name.localeCompare(b.container.name));
  return { overlays, sandboxes, plugged };
}

/**
 * One local container's sandbox: its namespace and one interface per endpoint, in attach
 * order. Pure; also used on its own where one container is attached at once (the CNI plugin).
 */
export function desiredSandbox(
  c: Container,
  endpoints: readonly Endpoint[],
  networks: ReadonlyMap<string, Network>,
  ctx: Pick<HostContext, 'node' | 'underlayMtu'>,
  netnsPrefix: string,
): DesiredSandbox {
  const eps = [...endpoints].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  const interfaces: DesiredInterface[] = [];
  for (const ep of eps) {
    const stored = networks.get(ep.networkId);
    const net = stored && networkOnNode(stored, ctx.node);
    if (!net) continue;
    const macvlan = net.driver === 'macvlan';
    interfaces.push({
      endpointId: ep.id,
      networkId: net.id,
      kind: macvlan ? 'macvlan' : 'veth',
      parent: macvlan ? net.parent : '',
      bridge: macvlan ? '' : bridgeName(net.id),
      hostVeth: macvlan ? '' : hostVethName(ep.id),
      // A CNI runtime names the first interface (CNI_IFNAME); Docker-style ones count from eth0.
      ifname: interfaces.length === 0 && c.cni ? c.cni.ifname : `eth${interfaces.length}`,
      mac: ep.mac,
      cidr: `${ep.ip}/${parseCidr(net.subnet).prefix}`,
      gateway: net.gateway,
      mtu: overlayMtu(net, ctx.underlayMtu),
    });
  }
  const mode = c.mode ?? 'network';
  const netns = mode === 'host' ? '' : `${netnsPrefix}${(mode === 'container' ? c.sharedWith : c.id).slice(0, 8)}`;
  return { container: c, netns, ownsNetns: mode === 'network' || mode === 'none', interfaces: mode === 'network' ? interfaces : [] };
}
