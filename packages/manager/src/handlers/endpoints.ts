import { alreadyExists, checkListSize, notFound, parseEndpointRequest, parseName } from '@ctnet/core';
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
  checkListSize(req.aliases, 'network aliases');
  const aliases = [...new Set(req.aliases.map((a) => parseName(a, 'alias')))];
  const out = await deps.store.updateEndpointAliases(net.id, name, aliases);
  if (!out) throw notFound(`no endpoint named ${name} in network ${net.name}; list them with "ctmgr endpoint ls --network ${net.name}"`);
  if ('clash' in out) throw alreadyExists(`service ${out.clash} answers to that name on network ${net.name}; choose another alias`);
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
