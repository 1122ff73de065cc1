import { DEFAULT_BRIDGE, isAttached, linkEnv, parseCniRef, parseNetnsPath, nameKey, notFound, parseContainerRequest, parseEndpointRequest, parseNetworkMode, type Container, type Endpoint, type Link, type Network } from '@ctnet/core';
import {
  containerToWire,
  endpointToWire,
  type ConnectNetworkRequest,
  type ContainerLogsRequest,
  type ContainerLogsResponse,
  type ContainerDetail,
  type DisconnectNetworkRequest,
  type DisconnectNetworkResponse,
  type Endpoint as WireEndpoint,
  type InspectContainerRequest,
  type ListContainersRequest,
  type ListContainersResponse,
  type RemoveContainerRequest,
  type RemoveContainerResponse,
  type RunContainerRequest,
} from '@ctnet/proto';
import { alreadyExists, failedPrecondition } from '@ctnet/core';
import type { ManagerDeps } from '../deps.js';
import { ensureDefaultBridge, findNetwork, newId } from './networks.js';
import { checkContainerNameFree } from './services.js';
import { assignContainerPorts } from './ports.js';

const detail = (c: Container, endpoints: readonly Endpoint[]): ContainerDetail => ({
  container: containerToWire(c),
  endpoints: [...endpoints].sort((a, b) => a.createdAt.localeCompare(b.createdAt)).map(endpointToWire),
});

/** Spread: the ready node with the fewest containers (ties by name), as Swarm's spread strategy. */
function pickNode(deps: ManagerDeps): string {
  const counts = new Map<string, number>();
  for (const key of deps.view.nodes.keys()) if (deps.view.alive.has(key)) counts.set(key, 0);
  if (counts.size === 0) throw failedPrecondition('no node is ready; start ctagent on a host first (see "ctmgr node ls")');
  for (const c of deps.view.containers.values()) {
    const key = nameKey(c.node);
    if (counts.has(key)) counts.set(key, counts.get(key)! + 1);
  }
  const [best] = [...counts].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0]));
  return deps.view.nodes.get(best![0])!.name;
}

/** `ctmgr run`: records the container and its first endpoint in one transaction; the node's agent does the rest. */
export async function runContainer(deps: ManagerDeps, req: RunContainerRequest): Promise<ContainerDetail> {
  const spec = parseContainerRequest({
    name: req.name,
    node: req.node,
    cmd: req.cmd,
    env: req.env,
    hostname: req.hostname,
    dns: req.dns,
    dnsSearch: req.dnsSearch,
    publish: req.publish,
    publishAll: req.publishAll,
    expose: req.expose,
    links: req.links,
  });
  deps.view.requireLoaded();
  const how = parseNetworkMode(req.network);
  const createdAt = new Date(deps.clock.now()).toISOString();
  let node: string;
  let sharedWith = '';
  if (how.mode === 'container') {
    // Docker's --network container:NAME: the same sandbox, so the same node.
    const other = await deps.store.getContainer(how.container!);
    if (!other) throw notFound(`container ${how.container} not found; --network container:NAME needs an existing container (see "ctmgr ps")`);
    if (other.mode === 'host' || other.mode === 'container') {
      throw failedPrecondition(`container ${other.name} has no sandbox of its own to share (its network mode is ${other.mode})`);
    }
    if (spec.node && nameKey(spec.node) !== nameKey(other.node)) {
      throw failedPrecondition(`container ${other.name} runs on node ${other.node}; a container sharing its sandbox must run there too`);
    }
    node = other.node;
    sharedWith = other.id;
  } else if (spec.node) {
    const known = deps.view.nodes.get(nameKey(spec.node)) ?? (await deps.store.getNode(spec.node));
    if (!known) throw notFound(`node ${spec.node} is not registered; pick one from "ctmgr node ls"`);
    node = known.name;
  } else node = pickNode(deps);
  const { ports: wanted, expose, links: linkSpecs, ...base } = spec;
  if (how.mode !== 'network' && (wanted.length > 0 || linkSpecs.length > 0)) {
    throw failedPrecondition(`-p, -P and --link need a network of the container's own; --network ${req.network} has none (use a network name)`);
  }
  let container: Container = {
    id: newId(),
    ...base,
    node,
    createdAt,
    mode: how.mode,
    sharedWith,
    attachPid: Math.max(0, req.attachPid),
    ...(req.attachNetns !== '' && { attachNetns: parseNetnsPath(req.attachNetns) }),
    ...(req.cni && { cni: parseCniRef(req.cni) }),
    ...(expose.length > 0 && { expose }),
  };
  if (how.mode !== 'network') {
    if (isAttached(container)) throw failedPrecondition('attach plugs a process into a network; give a network name');
    const outcome = await deps.store.createContainer(container);
    if (!outcome.ok && outcome.reason === 'container-taken') {
      throw alreadyExists(`a container named ${container.name} already exists (on node ${outcome.existing.node}); choose another name or remove it with "ctmgr rm -f ${container.name}"`);
    }
    deps.log.info('container created', { name: container.name, node, mode: how.mode });
    return detail(container, []);
  }
  const epSpec = parseEndpointRequest({ network: how.network!, node, name: spec.name, aliases: req.aliases, ip: req.ip, mac: req.mac });
  // The default bridge network is made at start; should that have failed, it is made here.
  const net =
    nameKey(epSpec.network) === DEFAULT_BRIDGE
      ? (deps.view.networkByNameOrId(DEFAULT_BRIDGE) ?? (await ensureDefaultBridge(deps)))
      : await findNetwork(deps, epSpec.network);
  checkContainerNameFree(deps, [container.name, ...epSpec.aliases], net);
  if (wanted.length > 0) {
    if (net.internal) throw failedPrecondition(`network ${net.name} is --internal: nothing on it can be published; drop -p/-P or use another network`);
    if (net.driver === 'macvlan') {
      throw failedPrecondition(`network ${net.name} is macvlan: its containers have their own address on the segment, so there is nothing to publish; drop -p/-P and reach the container at its address`);
    }
    container = { ...container, ports: assignContainerPorts(deps, node, wanted) };
  }
  if (linkSpecs.length > 0) container = await withLinks(deps, container, net, linkSpecs);
  const ep = await deps.allocator.createEndpoint(net, { ...epSpec, container: container.id }, newId(), createdAt, container);
  deps.log.info('container created', { name: container.name, node, network: net.name, ip: ep.ip });
  return detail(container, [ep]);
}

/**
 * Docker's legacy --link: the linked container must run, on the same network; the new one
 * gets its address in /etc/hosts and the variables describing its exposed ports.
 */
async function withLinks(deps: ManagerDeps, c: Container, net: Network, specs: readonly { name: string; alias: string }[]): Promise<Container> {
  const links: Link[] = [];
  let env: Record<string, string> = {};
  const onNet = await deps.store.listEndpoints(net.id);
  for (const spec of specs) {
    const target = await deps.store.getContainer(spec.name);
    if (!target) throw notFound(`--link ${spec.name}: no container named ${spec.name}; start it first (see "ctmgr ps")`);
    if (target.status?.state !== 'running') {
      throw failedPrecondition(`--link ${spec.name}: container ${target.name} is not running (${target.status?.state ?? 'not started yet'}); links need a running container`);
    }
    const ep = onNet.find((e) => e.container === target.id);
    if (!ep) throw failedPrecondition(`--link ${spec.name}: container ${target.name} is not on network ${net.name}; a link joins containers on the same network`);
    const link = { name: target.name, alias: spec.alias, ip: ep.ip };
    links.push(link);
    env = { ...env, ...linkEnv(link, c.name, target.expose ?? [], target.env) };
  }
  // What the user set wins over what a link brings, as in Docker.
  return { ...c, links, env: { ...env, ...c.env } };
}

export async function removeContainer(deps: ManagerDeps, req: RemoveContainerRequest): Promise<RemoveContainerResponse> {
  const removed = await deps.store.deleteContainer(req.name.trim());
  if (!removed) throw notFound(`no container named ${req.name}; list them with "ctmgr ps"`);
  deps.log.info('container removed', { name: removed.container.name, released: removed.endpoints.map((e) => e.ip).join(',') });
  return { name: removed.container.name, released: removed.endpoints.map((e) => e.ip) };
}

export async function listContainers(deps: ManagerDeps, req: ListContainersRequest): Promise<ListContainersResponse> {
  const [containers, endpoints] = await Promise.all([deps.store.listContainers(), deps.store.listEndpoints()]);
  const node = req.node.trim().toLowerCase();
  return {
    containers: containers
      .filter((c) => node === '' || c.node.toLowerCase() === node)
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((c) => detail(c, endpoints.filter((e) => e.container === c.id))),
  };
}

export async function inspectContainer(deps: ManagerDeps, req: InspectContainerRequest): Promise<ContainerDetail> {
  const c = await deps.store.getContainer(req.name.trim());
  if (!c) throw notFound(`no container named ${req.name}; list them with "ctmgr ps"`);
  const endpoints = (await deps.store.listEndpoints()).filter((e) => e.container === c.id);
  return detail(c, endpoints);
}

/** A CNI attachment's interfaces are its runtime's to add and remove (one attachment per conflist). */
function refuseRuntimeOwned(c: Container): void {
  if (c.cni) {
    throw failedPrecondition(`container ${c.name} is a CNI attachment (${c.cni.containerId} ${c.cni.ifname}): its runtime owns its interfaces; attach it to another network through the runtime (another CNI configuration)`);
  }
}

/** `ctmgr network connect`: a further interface (eth1, …) for a container, on its node. */
export async function connectNetwork(deps: ManagerDeps, req: ConnectNetworkRequest): Promise<WireEndpoint> {
  const c = await deps.store.getContainer(req.container.trim());
  if (!c) throw notFound(`no container named ${req.container}; list them with "ctmgr ps"`);
  refuseRuntimeOwned(c);
  const spec = parseEndpointRequest({ network: req.network, node: c.node, name: c.name, aliases: req.aliases, ip: req.ip });
  const net = await findNetwork(deps, spec.network);
  checkContainerNameFree(deps, [c.name, ...spec.aliases], net);
  const attached = (await deps.store.listEndpoints(net.id)).find((e) => e.container === c.id);
  if (attached) throw alreadyExists(`container ${c.name} is already connected to network ${net.name} (${attached.ip})`);
  const ep = await deps.allocator.createEndpoint(net, { ...spec, container: c.id }, newId(), new Date(deps.clock.now()).toISOString(), undefined, c);
  return endpointToWire(ep);
}

export async function disconnectNetwork(deps: ManagerDeps, req: DisconnectNetworkRequest): Promise<DisconnectNetworkResponse> {
  const c = await deps.store.getContainer(req.container.trim());
  if (!c) throw notFound(`no container named ${req.container}; list them with "ctmgr ps"`);
  refuseRuntimeOwned(c);
  const net = await findNetwork(deps, req.network);
  const ep = (await deps.store.listEndpoints(net.id)).find((e) => e.container === c.id);
  if (!ep) throw notFound(`container ${c.name} is not connected to network ${net.name}`);
  const all = (await deps.store.listEndpoints()).filter((e) => e.container === c.id);
  if (all.length === 1) {
    throw failedPrecondition(`network ${net.name} is the last network of container ${c.name}; remove the container instead (ctmgr rm -f ${c.name})`);
  }
  const removed = await deps.store.deleteEndpoint(net.id, ep.name);
  return { ip: removed?.ip ?? ep.ip };
}

/** `ctmgr logs`: asks the container's node's agent, over its stream to this manager. */
export async function containerLogs(deps: ManagerDeps, req: ContainerLogsRequest): Promise<ContainerLogsResponse> {
  const c = await deps.store.getContainer(req.name.trim());
  if (!c) throw notFound(`no container named ${req.name}; list them with "ctmgr ps"`);
  return { data: await deps.sessions.requestLogs(c.node, c.name, Math.max(0, req.tailBytes)) };
}
