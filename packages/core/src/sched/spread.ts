import type { Container } from '../model/container.js';
import { nameKey } from '../model/names.js';
import type { Node } from '../model/node.js';
import { parseConstraint, satisfies, type Service } from '../model/service.js';

/**
 * What a service needs to match its spec (pure): which slots to fill and where, which tasks
 * to retire. Placement is Swarm's spread: among the ready nodes that satisfy the constraints,
 * the one running the fewest tasks of this service, then the fewest containers, then by name.
 */
export interface ServicePlan {
  readonly create: readonly { readonly slot: number; readonly node: string }[];
  readonly shutdown: readonly string[]; // task (container) names
  /** Why some slots stay empty (no node satisfies the constraints, or none is ready). */
  readonly pending?: string;
}

export function planService(
  service: Service,
  tasks: readonly Container[],
  readyNodes: readonly Node[],
  /** Containers per node key (everything, not only this service): the tie-breaker. */
  load: ReadonlyMap<string, number>,
  /**
   * A service publishing in host mode holds its ports on each node it runs on: at most one of
   * its tasks per node, and none where another container already holds such a port (node keys).
   */
  hostPorts?: { readonly onePerNode: boolean; readonly blocked: ReadonlySet<string> },
): ServicePlan {
  const active = tasks.filter((t) => t.task?.desired === 'running');
  const shutdown: string[] = [];
  const bySlot = new Map<number, Container>();
  // Running ones first, so a duplicate slot keeps the task that serves.
  const ordered = [...active].sort((a, b) => rank(a) - rank(b) || a.createdAt.localeCompare(b.createdAt));
  for (const t of ordered) {
    const slot = t.task!.slot;
    if (slot > service.replicas || bySlot.has(slot)) shutdown.push(t.name);
    else bySlot.set(slot, t);
  }
  const constraints = service.constraints.map(parseConstraint);
  const eligible = readyNodes.filter((n) => satisfies(n, constraints)).sort((a, b) => a.name.localeCompare(b.name));
  const mine = new Map<string, number>();
  for (const t of bySlot.values()) mine.set(nameKey(t.node), (mine.get(nameKey(t.node)) ?? 0) + 1);
  const total = new Map(load);
  const create: { slot: number; node: string }[] = [];
  let missing = 0;
  let portBound = false;
  for (let slot = 1; slot <= service.replicas; slot++) {
    if (bySlot.has(slot)) continue;
    const candidates = hostPorts
      ? eligible.filter((n) => !hostPorts.blocked.has(nameKey(n.name)) && (!hostPorts.onePerNode || (mine.get(nameKey(n.name)) ?? 0) === 0))
      : eligible;
    if (candidates.length === 0) {
      missing++;
      portBound ||= eligible.length > 0;
      continue;
    }
    let best = candidates[0]!;
    for (const n of candidates) {
      const k = nameKey(n.name);
      const b = nameKey(best.name);
      const d = (mine.get(k) ?? 0) - (mine.get(b) ?? 0) || (total.get(k) ?? 0) - (total.get(b) ?? 0);
      if (d < 0) best = n;
    }
    const key = nameKey(best.name);
    mine.set(key, (mine.get(key) ?? 0) + 1);
    total.set(key, (total.get(key) ?? 0) + 1);
    create.push({ slot, node: best.name });
  }
  const pending =
    missing === 0
      ? undefined
      : portBound
        ? `${missing} task(s) pending: the service publishes in host mode, so each node runs at most one of its tasks and none where its port is taken; add nodes or use mode=ingress`
      : readyNodes.length === 0
        ? `${missing} task(s) pending: no node is ready (start ctagent on a host; see "ctmgr node ls")`
        : `${missing} task(s) pending: no ready node satisfies ${service.constraints.map((c) => `"${c}"`).join(' and ')} (nodes: ${readyNodes.map((n) => describeNode(n)).join(', ')})`;
  return { create, shutdown, ...(pending && { pending }) };
}

const rank = (t: Container): number => (t.status?.state === 'running' ? 0 : 1);

const describeNode = (n: Node): string => {
  const labels = Object.entries(n.labels).map(([k, v]) => `${k}=${v}`);
  return labels.length ? `${n.name} [${labels.join(',')}]` : n.name;
};

/**
 * Retiring tasks may go once every ready node has applied the revision that withdrew their
 * DNS records (so no host still answers with them), or after `timeoutMs` (a stuck agent must
 * not hold a removal forever).
 */
export function removableTasks(
  retiring: readonly { readonly name: string; readonly revision: number; readonly since: number }[],
  acks: readonly number[], // acked revision of each ready node
  now: number,
  timeoutMs: number,
): string[] {
  const floor = acks.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...acks);
  return retiring.filter((t) => t.revision <= floor || now - t.since >= timeoutMs).map((t) => t.name);
}
