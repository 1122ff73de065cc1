import { nameKey, type ClusterState, type Container, type Endpoint, type Network, type Node } from '@ctnet/core';
import {
  containerFromWire,
  endpointFromWire,
  networkFromWire,
  nodeFromWire,
  type Changes,
  type Snapshot,
} from '@ctnet/proto';

/**
 * The agent's copy of the cluster's desired state, as streamed by the manager. Applying a
 * snapshot replaces everything; applying changes patches it. Wire objects are validated on
 * the way in (proto/convert), so the reconciler only sees domain values.
 */
export interface LocalState extends ClusterState {
  readonly revision: number;
  readonly vxlanPort: number;
  readonly hasSnapshot: boolean;
  /** A container by id (the maps are by name): what local callers that hold an id ask. */
  containerById(id: string): Container | undefined;
  applySnapshot(s: Snapshot): void;
  applyChanges(c: Changes): void;
}

export function createLocalState(): LocalState {
  const networks = new Map<string, Network>();
  const endpoints = new Map<string, Endpoint>();
  const nodes = new Map<string, Node>();
  const containers = new Map<string, Container>();
  let revision = 0;
  let vxlanPort = 4789;
  let hasSnapshot = false;
  return {
    networks,
    endpoints,
    nodes,
    containers,
    get revision() {
      return revision;
    },
    get vxlanPort() {
      return vxlanPort;
    },
    get hasSnapshot() {
      return hasSnapshot;
    },
    containerById(id) {
      for (const c of containers.values()) if (c.id === id) return c;
      return undefined;
    },
    applySnapshot(s) {
      for (const m of [networks, endpoints, nodes, containers]) m.clear();
      for (const n of s.networks) networks.set(n.id, networkFromWire(n));
      for (const e of s.endpoints) endpoints.set(`${e.networkId}/${nameKey(e.name)}`, endpointFromWire(e));
      for (const n of s.nodes) nodes.set(nameKey(n.name), nodeFromWire(n));
      for (const c of s.containers) containers.set(nameKey(c.name), containerFromWire(c));
      vxlanPort = s.cluster?.vxlanPort || 4789;
      revision = s.revision;
      hasSnapshot = true;
    },
    applyChanges(c) {
      for (const ev of c.events) {
        const obj = ev.object;
        if (!obj) {
          const maps: Record<string, Map<string, unknown>> = { network: networks, endpoint: endpoints, node: nodes, container: containers };
          maps[ev.kind]?.delete(ev.id);
          continue;
        }
        switch (obj.$case) {
          case 'network':
            networks.set(ev.id, networkFromWire(obj.value));
            break;
          case 'endpoint':
            endpoints.set(ev.id, endpointFromWire(obj.value));
            break;
          case 'node':
            nodes.set(ev.id, nodeFromWire(obj.value));
            break;
          case 'container':
            containers.set(ev.id, containerFromWire(obj.value));
            break;
        }
      }
      revision = Math.max(revision, c.revision);
    },
  };
}
