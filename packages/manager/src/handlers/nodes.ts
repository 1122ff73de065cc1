import { failedPrecondition, nameKey, notFound, parseName, type Node } from '@ctnet/core';
import {
  endpointToWire,
  nodeToWire,
  type DiagnoseNodeRequest,
  type DiagnoseNodeResponse,
  type InspectNodeRequest,
  type ListNodesResponse,
  type NodeDetail,
  type NodeStatus,
  type RemoveNodeRequest,
  type RemoveNodeResponse,
} from '@ctnet/proto';
import type { ManagerDeps } from '../deps.js';

/** Status and lag from the view: ready = the node's lease key exists; lag = state revisions not yet acked. */
/** Endpoints per node key, counted in one pass (not once per node). */
function endpointCounts(deps: ManagerDeps): Map<string, number> {
  const counts = new Map<string, number>();
  for (const ep of deps.view.endpoints.values()) counts.set(nameKey(ep.node), (counts.get(nameKey(ep.node)) ?? 0) + 1);
  return counts;
}

export function statusOf(deps: ManagerDeps, node: Node, counts: ReadonlyMap<string, number>): NodeStatus {
  const key = nameKey(node.name);
  const ack = deps.view.acks.get(key);
  const endpoints = counts.get(key) ?? 0;
  // A node streaming to this manager: its newest ack, not yet the persisted one (written at most every 200 ms).
  const acked = Math.max(ack?.revision ?? 0, deps.sessions.ackedHere(key));
  return {
    node: nodeToWire(node),
    status: deps.view.alive.has(key) ? 'ready' : 'down',
    endpoints,
    ackedRevision: acked,
    lag: Math.max(0, deps.view.stateRevision - acked),
    lastAckAt: ack?.at ?? '',
  };
}

export async function listNodes(deps: ManagerDeps): Promise<ListNodesResponse> {
  deps.view.requireLoaded();
  const nodes = [...deps.view.nodes.values()].sort((a, b) => a.name.localeCompare(b.name));
  const counts = endpointCounts(deps);
  return { nodes: nodes.map((n) => statusOf(deps, n, counts)), stateRevision: deps.view.stateRevision };
}

export async function inspectNode(deps: ManagerDeps, req: InspectNodeRequest): Promise<NodeDetail> {
  deps.view.requireLoaded();
  const name = parseName(req.name, 'node');
  const node = deps.view.nodes.get(nameKey(name)) ?? (await deps.store.getNode(name));
  if (!node) throw notFound(`node ${name} not found; list nodes with "ctmgr node ls"`);
  const endpoints = (await deps.store.listEndpoints()).filter((e) => nameKey(e.node) === nameKey(name));
  return { status: statusOf(deps, node, endpointCounts(deps)), endpoints: endpoints.map(endpointToWire) };
}

/** `ctmgr node diag NODE`: the node's agent reads its kernel and answers over its stream. */
export async function diagnoseNode(deps: ManagerDeps, req: DiagnoseNodeRequest): Promise<DiagnoseNodeResponse> {
  deps.view.requireLoaded();
  const name = parseName(req.node, 'node');
  const node = deps.view.nodes.get(nameKey(name)) ?? (await deps.store.getNode(name));
  if (!node) throw notFound(`node ${name} not found; list nodes with "ctmgr node ls"`);
  return { node: node.name, reportJson: await deps.sessions.requestDiag(node.name) };
}

/** Removes the node's containers and endpoints (releasing their addresses), not the node record. */
export async function removeNodeEndpoints(deps: ManagerDeps, name: string): Promise<number> {
  let removed = 0;
  for (const c of await deps.store.listContainers()) {
    if (nameKey(c.node) !== nameKey(name)) continue;
    removed += (await deps.store.deleteContainer(c.name))?.endpoints.length ?? 0;
  }
  const endpoints = (await deps.store.listEndpoints()).filter((e) => nameKey(e.node) === nameKey(name));
  for (const ep of endpoints) if (await deps.store.deleteEndpoint(ep.networkId, ep.name)) removed++;
  return removed;
}

export async function removeNode(deps: ManagerDeps, req: RemoveNodeRequest): Promise<RemoveNodeResponse> {
  deps.view.requireLoaded();
  const name = parseName(req.name, 'node');
  const node = await deps.store.getNode(name);
  if (!node) {
    // A node that joined but never registered still holds a certificate: revoke it.
    if ((await deps.store.pki.revoke('node', name)) > 0) {
      deps.log.info('node removed (it had joined, never registered)', { name });
      return { name, endpointsRemoved: 0 };
    }
    throw notFound(`node ${name} not found; list nodes with "ctmgr node ls"`);
  }
  if (deps.view.alive.has(nameKey(name)) && !req.force) {
    throw failedPrecondition(`node ${name} is ready (its agent is connected); stop its agent first, or pass --force`);
  }
  const endpointsRemoved = await removeNodeEndpoints(deps, name);
  await forgetNode(deps, name);
  deps.log.info('node removed', { name, endpointsRemoved });
  return { name: node.name, endpointsRemoved };
}

/**
 * Deletes a node's record after freeing the subnets its pooled bridge networks reserved for it
 * (a node re-registering later gets a slice again with its first container there).
 */
export async function forgetNode(deps: ManagerDeps, name: string): Promise<void> {
  const key = nameKey(name);
  for (const net of deps.view.networks.values()) {
    if (net.hostSubnets?.[key] === undefined) continue;
    await deps.store.updateNetwork(net.id, (n) => {
      if (n.hostSubnets?.[key] === undefined) return undefined;
      const { [key]: _freed, ...rest } = n.hostSubnets;
      return { ...n, hostSubnets: rest };
    });
  }
  await deps.store.deleteNode(name);
}
