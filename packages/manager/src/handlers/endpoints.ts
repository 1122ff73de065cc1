import { alreadyExists, checkListSize, failedPrecondition, notFound, parseEndpointRequest, parseName, type PortMapping } from '@ctnet/core';
import { portMappingFromWire } from '@ctnet/proto';
import { assignContainerPorts } from './ports.js';
import {
  endpointToWire,
  type CreateEndpointRequest,
  type DeleteEndpointRequest,
  type DeleteEndpointResponse,
  type Endpoint as WireEndpoint,
  type ListEndpointsRequest,
  type ListEndpointsResponse,
  type UpdateEndpointRequest,
} from '@ctnet/proto';
import type { ManagerDeps } from '../deps.js';
import { findNetwork, newId } from './networks.js';

export async function createEndpoint(deps: ManagerDeps, req: CreateEndpointRequest): Promise<WireEndpoint> {
  const spec = parseEndpointRequest({
    network: req.network,
    node: req.node,
    name: req.name,
    aliases: req.aliases,
    ip: req.ip,
    mac: req.mac,
    origin: req.origin,
  });
  deps.view.requireLoaded();
  if (!deps.view.nodes.has(spec.node.toLowerCase()) && !(await deps.store.getNode(spec.node))) {
    throw notFound(`node ${spec.node} is not registered; start ctagent there or pick a node from "ctmgr node ls"`);
  }
  const net = await findNetwork(deps, spec.network);
  const ep = await deps.allocator.createEndpoint(net, spec, newId(), new Date(deps.clock.now()).toISOString());
  return endpointToWire(ep);
}

export async function deleteEndpoint(deps: ManagerDeps, req: DeleteEndpointRequest): Promise<DeleteEndpointResponse> {
  const net = await findNetwork(deps, req.network);
  const name = parseName(req.name, 'endpoint');
  const removed = await deps.store.deleteEndpoint(net.id, name);
  if (!removed) throw notFound(`no endpoint named ${name} in network ${net.name}; list them with "ctmgr endpoint ls --network ${net.name}"`);
  return { ip: removed.ip };
}

export async function updateEndpoint(deps: ManagerDeps, req: UpdateEndpointRequest): Promise<WireEndpoint> {
  const net = await findNetwork(deps, req.network);
  const name = parseName(req.name, 'endpoint');
  const missing = () => notFound(`no endpoint named ${name} in network ${net.name}; list them with "ctmgr endpoint ls --network ${net.name}"`);
  let aliases: string[] | undefined;
  if (req.setAliases) {
    checkListSize(req.aliases, 'network aliases');
    aliases = [...new Set(req.aliases.map((a) => parseName(a, 'alias')))];
  }
  let ports: PortMapping[] | undefined;
  if (req.setPorts) {
    checkListSize(req.ports, 'published ports');
    const ep = await deps.store.getEndpoint(net.id, name);
    if (!ep) throw missing();
    if (ep.container !== '') throw failedPrecondition(`endpoint ${name} is an interface of a container: its ports are the container's (-p at ctmgr run)`);
    // A host port 0 is for the manager to choose: checked as port 1, then put back.
    const wanted = req.ports.map((p) => ({ ...portMappingFromWire({ ...p, hostPort: p.hostPort || 1 }, `endpoint ${name}`), hostPort: p.hostPort }));
    // Its own ports are replaced, not clashed with (the store keeps a claim it already holds).
    ports = wanted.length > 0 ? assignContainerPorts(deps, ep.node, wanted, ep.id) : [];
  }
  const out = await deps.store.updateEndpoint(net.id, name, { ...(aliases && { aliases }), ...(ports && { ports }) });
  if (!out) throw missing();
  if ('clash' in out) throw alreadyExists(`service ${out.clash} answers to that name on network ${net.name}; choose another alias`);
  if ('portTaken' in out) throw alreadyExists(`host port ${out.portTaken.split('/ports/')[1] ?? out.portTaken} is already published by ${out.holder}; choose another host port`);
  return endpointToWire(out);
}

export async function listEndpoints(deps: ManagerDeps, req: ListEndpointsRequest): Promise<ListEndpointsResponse> {
  const net = req.network ? await findNetwork(deps, req.network) : undefined;
  const all = await deps.store.listEndpoints(net?.id);
  const node = req.node.toLowerCase();
  const endpoints = all.filter((e) => node === '' || e.node.toLowerCase() === node);
  endpoints.sort((a, b) => a.name.localeCompare(b.name) || a.networkId.localeCompare(b.networkId));
  return { endpoints: endpoints.map(endpointToWire) };
}
