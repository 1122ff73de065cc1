import type { ClusterState } from '../desired/host.js';
import { isServing } from '../model/service.js';
import { isVirtualIp, type Endpoint } from '../model/endpoint.js';
import { nameKey } from '../model/names.js';
import type { PublishSpec } from '../model/ports.js';

/** A service's virtual IP on one network, and the addresses of its running tasks there. */
export interface VipBackends {
  readonly service: string;
  readonly networkId: string;
  readonly vip: string;
  readonly backends: readonly string[];
}

/** A service published in ingress mode: every node forwards its ports to these task addresses. */
export interface MeshService {
  readonly service: string;
  readonly networkId: string; // the tasks' first network, reached over the overlay
  readonly publish: readonly PublishSpec[];
  readonly backends: readonly string[];
}

const byAddress = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

/** Endpoints per container, in attach order (eth0 first). */
export function endpointsByContainer(state: ClusterState): Map<string, Endpoint[]> {
  const out = new Map<string, Endpoint[]>();
  for (const ep of state.endpoints.values()) {
    if (!ep.container) continue;
    const list = out.get(ep.container);
    if (list) list.push(ep);
    else out.set(ep.container, [ep]);
  }
  for (const list of out.values()) list.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  return out;
}

/**
 * Who serves what (pure), from the same rule as DNS: a task counts while it runs and is
 * wanted. Sorted, so every host and every run builds the same rules.
 */
export interface ServiceTraffic {
  readonly vips: readonly VipBackends[];
  readonly mesh: readonly MeshService[];
}

export function serviceTraffic(state: ClusterState, eps = endpointsByContainer(state)): ServiceTraffic {
  const serving = new Map<string, string[]>(); // "<network>/<service>" -> addresses
  const mesh = new Map<string, { networkId: string; publish: readonly PublishSpec[]; backends: string[] }>();
  for (const c of state.containers.values()) {
    const task = c.task;
    if (!task || task.desired !== 'running') continue;
    const mine = eps.get(c.id) ?? [];
    const up = isServing(c);
    if (up) {
      for (const ep of mine) {
        const key = `${ep.networkId}/${nameKey(task.service)}`;
        (serving.get(key) ?? serving.set(key, []).get(key)!).push(ep.ip);
      }
    }
    const first = mine[0];
    if (task.publish && task.publish.length > 0 && first) {
      const key = nameKey(task.service);
      const m = mesh.get(key) ?? { networkId: first.networkId, publish: task.publish, backends: [] };
      mesh.set(key, m);
      if (up && first.networkId === m.networkId) m.backends.push(first.ip);
    }
  }
  const vips: VipBackends[] = [];
  for (const ep of state.endpoints.values()) {
    if (!isVirtualIp(ep)) continue;
    vips.push({ service: ep.name, networkId: ep.networkId, vip: ep.ip, backends: (serving.get(`${ep.networkId}/${nameKey(ep.name)}`) ?? []).sort(byAddress) });
  }
  vips.sort((a, b) => byAddress(a.vip, b.vip));
  return {
    vips,
    mesh: [...mesh.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([service, m]) => ({ service, ...m, backends: m.backends.sort(byAddress) })),
  };
}

/** `dnat to` one address, or spread by a round-robin counter over several (one rule, one map). */
export function spreadTo(backends: readonly string[], port?: number): string {
  if (backends.length === 1) return `dnat to ${backends[0]}${port ? `:${port}` : ''}`;
  const entries = backends.map((b, i) => `${i} : ${b}${port ? ` . ${port}` : ''}`).join(', ');
  return port ? `dnat ip addr . port to numgen inc mod ${backends.length} map { ${entries} }` : `dnat to numgen inc mod ${backends.length} map { ${entries} }`;
}
