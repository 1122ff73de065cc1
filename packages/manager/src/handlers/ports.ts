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
export function portClaims(deps: ManagerDeps, node: string): Claim[] {
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
  return claims;
}

function choosePort(range: { first: number; last: number }, taken: (port: number) => boolean, what: string): number {
  for (let port = range.first; port <= range.last; port++) if (!taken(port)) return port;
  throw resourceExhausted(`no free port left in ${range.first}-${range.last} for ${what}; publish on a port of your own choosing`);
}

/** `-p` of a container on `node`: chosen host ports filled in, clashes refused naming their holder. */
export function assignContainerPorts(deps: ManagerDeps, node: string, ports: readonly PortMapping[]): PortMapping[] {
  const claims = portClaims(deps, node);
  const out: PortMapping[] = [];
  for (const p of ports) {
    const taken = (port: number) => claims.some((c) => portsClash(c, { ...p, hostPort: port })) || out.some((o) => portsClash(o, { ...p, hostPort: port }));
    const hostPort = p.hostPort !== 0 ? p.hostPort : choosePort(HOST_PORT_RANGE, taken, `container port ${p.containerPort}/${p.protocol}`);
    const mapping = { ...p, hostPort };
    const holder = claims.find((c) => portsClash(c, mapping));
    if (holder) {
      throw alreadyExists(
        `port ${hostBinding(mapping)}/${p.protocol} on node ${node} is already published by ${holder.holder}; choose another host port (e.g. -p ${p.containerPort} picks a free one)`,
      );
    }
    out.push(mapping);
  }
  return out;
}

/**
 * A service's --publish: ingress ports are taken on every node, so they clash with any other
 * claim anywhere; a published port left out is chosen from Swarm's range (30000-32767).
 */
export function assignServicePorts(deps: ManagerDeps, publish: readonly PublishSpec[]): PublishSpec[] {
  const claims = portClaims(deps, '');
  const out: PublishSpec[] = [];
  for (const p of publish) {
    // An ingress port clashes with any claim anywhere; a host-mode one only with ingress ports
    // (a container holding it on some node keeps the scheduler off that node instead).
    const holderOf = (port: number): Claim | undefined =>
      claims.find((c) => c.protocol === p.protocol && c.hostPort === port && (p.mode === 'ingress' || c.everyNode));
    const mine = (port: number) => out.some((o) => o.protocol === p.protocol && o.published === port);
    const published = p.published !== 0 ? p.published : choosePort(INGRESS_PORT_RANGE, (port) => holderOf(port) !== undefined || mine(port), `target ${p.target}/${p.protocol}`);
    const holder = holderOf(published);
    if (holder) {
      throw alreadyExists(`port ${published}/${p.protocol} is already published by ${holder.holder}; choose another published port, or leave it out to get a free one`);
    }
    out.push({ ...p, published });
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
