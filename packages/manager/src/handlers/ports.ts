import {
  alreadyExists,
  HOST_PORT_RANGE,
  hostBinding,
  INGRESS_PORT_RANGE,
  nameKey,
  portsClash,
  resourceExhausted,
  type PortMapping,
  type Protocol,
  type PublishSpec,
} from '@ctnet/core';
import type { ManagerDeps } from '../deps.js';

/** Who holds a port on a node: a container's -p, a host-mode task, or a service's ingress port (every node). */
interface Claim {
  readonly protocol: Protocol;
  readonly hostIp: string;
  readonly hostPort: number;
  readonly holder: string;
  /** An ingress port: held on every node. */
  readonly everyNode: boolean;
}

/** The claims on `node` (its containers' ports and every ingress port); '' = the claims on any node. */
export function portClaims(deps: ManagerDeps, node: string, exceptEndpoint = ''): Claim[] {
  const claims: Claim[] = [];
  for (const svc of deps.view.services.values()) {
    for (const p of svc.publish ?? []) {
      if (p.mode === 'ingress') claims.push({ protocol: p.protocol, hostIp: '', hostPort: p.published, holder: `service ${svc.name} (ingress, every node)`, everyNode: true });
    }
  }
  for (const c of deps.view.containers.values()) {
    if (node !== '' && nameKey(c.node) !== nameKey(node)) continue;
    for (const p of c.ports ?? []) claims.push({ ...p, holder: `container ${c.name} on node ${c.node}`, everyNode: false });
  }
  for (const e of deps.view.endpoints.values()) {
    if (!e.ports?.length || e.id === exceptEndpoint || (node !== '' && nameKey(e.node) !== nameKey(node))) continue;
    for (const p of e.ports) claims.push({ ...p, holder: `Docker container ${e.aliases[0] ?? e.name} on node ${e.node}`, everyNode: false });
  }
  return claims;
}

/** Claims indexed by protocol and port: each check is then one lookup, not a scan of every claim. */
function indexClaims(claims: readonly Claim[]): Map<string, Claim[]> {
  const byPort = new Map<string, Claim[]>();
  for (const c of claims) {
    const k = `${c.protocol}/${c.hostPort}`;
    byPort.set(k, [...(byPort.get(k) ?? []), c]);
  }
  return byPort;
}

/**
 * The next port of `range` from `cursor` on for which `taken` is false. Callers keep one
 * cursor per protocol and request, so choosing N ports costs O(N + range), never N × range.
 */
function choosePort(range: { first: number; last: number }, cursor: Map<Protocol, number>, protocol: Protocol, taken: (port: number) => boolean, what: string): number {
  for (let port = cursor.get(protocol) ?? range.first; port <= range.last; port++) {
    if (!taken(port)) {
      cursor.set(protocol, port + 1);
      return port;
    }
  }
  cursor.set(protocol, range.last + 1);
  throw resourceExhausted(`no free port left in ${range.first}-${range.last} for ${what}; publish on a port of your own choosing`);
}

/**
 * `-p` of a container on `node`: chosen host ports filled in, clashes refused naming their
 * holder. This reads the manager's view for a clear answer at once; the claim keys written
 * with the container (store) are what actually guarantee one holder per port.
 */
export function assignContainerPorts(deps: ManagerDeps, node: string, ports: readonly PortMapping[], exceptEndpoint = ''): PortMapping[] {
  const held = indexClaims(portClaims(deps, node, exceptEndpoint));
  const holderOf = (m: PortMapping): Claim | undefined => held.get(`${m.protocol}/${m.hostPort}`)?.find((c) => portsClash(c, m));
  const cursor = new Map<Protocol, number>();
  const out: PortMapping[] = [];
  for (const p of ports) {
    const hostPort =
      p.hostPort !== 0 ? p.hostPort : choosePort(HOST_PORT_RANGE, cursor, p.protocol, (port) => holderOf({ ...p, hostPort: port }) !== undefined, `container port ${p.containerPort}/${p.protocol}`);
    const mapping = { ...p, hostPort };
    const holder = holderOf(mapping);
    if (holder) {
      throw alreadyExists(
        `port ${hostBinding(mapping)}/${p.protocol} on node ${node} is already published by ${holder.holder}; choose another host port (e.g. -p ${p.containerPort} picks a free one)`,
      );
    }
    out.push(mapping);
    // later mappings of this request must not take it again
    const k = `${mapping.protocol}/${mapping.hostPort}`;
    held.set(k, [...(held.get(k) ?? []), { ...mapping, holder: 'another -p of this container', everyNode: false }]);
  }
  return out;
}

/**
 * A service's --publish: ingress ports are taken on every node, so they clash with any other
 * claim anywhere; a published port left out is chosen from Swarm's range (30000-32767).
 */
export function assignServicePorts(deps: ManagerDeps, publish: readonly PublishSpec[]): PublishSpec[] {
  const held = indexClaims(portClaims(deps, ''));
  const cursor = new Map<Protocol, number>();
  const out: PublishSpec[] = [];
  for (const p of publish) {
    // An ingress port clashes with any claim anywhere; a host-mode one only with ingress ports
    // (a container holding it on some node keeps the scheduler off that node instead).
    const holderOf = (port: number): Claim | undefined => held.get(`${p.protocol}/${port}`)?.find((c) => p.mode === 'ingress' || c.everyNode);
    const published = p.published !== 0 ? p.published : choosePort(INGRESS_PORT_RANGE, cursor, p.protocol, (port) => holderOf(port) !== undefined, `target ${p.target}/${p.protocol}`);
    const holder = holderOf(published);
    if (holder) {
      throw alreadyExists(`port ${published}/${p.protocol} is already published by ${holder.holder}; choose another published port, or leave it out to get a free one`);
    }
    out.push({ ...p, published });
    const k = `${p.protocol}/${published}`;
    held.set(k, [...(held.get(k) ?? []), { protocol: p.protocol, hostIp: '', hostPort: published, holder: 'another --publish of this service', everyNode: true }]);
  }
  return out;
}

/** Nodes where a host-mode port of this service is already held by someone else. */
export function nodesHoldingHostPorts(deps: ManagerDeps, serviceId: string, publish: readonly PublishSpec[]): Set<string> {
  const blocked = new Set<string>();
  const host = publish.filter((p) => p.mode === 'host');
  if (host.length === 0) return blocked;
  for (const c of deps.view.containers.values()) {
    if (c.task?.serviceId === serviceId) continue;
    for (const p of c.ports ?? []) if (host.some((h) => h.protocol === p.protocol && h.published === p.hostPort)) blocked.add(nameKey(c.node));
  }
  return blocked;
}
