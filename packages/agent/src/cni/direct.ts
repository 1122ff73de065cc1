import { existsSync } from 'node:fs';
import { desiredSandbox, desiredSandboxRules, nameKey, serviceTraffic, type HostContext } from '@ctnet/core';
import { containerFromWire, endpointFromWire, type ContainerDetail } from '@ctnet/proto';
import type { PolicyApplier } from '../nft/policy.js';
import type { Reconciler } from '../reconciler.js';
import type { SandboxRecord, SandboxRuntime } from '../sandbox/runtime.js';
import type { LocalState } from '../state.js';

/**
 * A CNI attachment programmed the moment the manager has claimed it, from the manager's own
 * answer, instead of after the stream has brought it and a whole run has gone by. Claim and
 * plumbing run as one exclusive job of the reconciler (never beside a run) through the same
 * plan and apply as every sandbox. Until the state shows such an attachment, runs leave its
 * sandbox alone (ahead); one taken out here is not made again by runs until the state no
 * longer shows it (removed). Both are judged from the state a run plans from: pending() is
 * called at the start of each run.
 */
export interface DirectAttach {
  /**
   * Claims (the manager call) and plumbs: the record once plumbed, or undefined when it is left
   * to the next run (the network has nothing on this host yet: its bridge is made by a run).
   */
  attach(claim: () => Promise<ContainerDetail>): Promise<{ detail: ContainerDetail; record: SandboxRecord | undefined; error?: unknown }>;
  /** Forgets an attachment given up on (its ADD failed). */
  drop(containerId: string): void;
  /** Releases (the manager call) and takes the interfaces out, by the container's name, in one exclusive job. */
  detach(name: string, release: () => Promise<unknown>): Promise<void>;
  isRemoved(containerId: string): boolean;
  /** What the run starting now must leave alone. */
  pending(): { ids: ReadonlySet<string>; netns: ReadonlySet<string>; removed: ReadonlySet<string> };
}

export function createDirectAttach(deps: {
  state: LocalState;
  host: Pick<HostContext, 'node' | 'underlayMtu'>;
  netnsPrefix: string;
  sandboxes: SandboxRuntime;
  policy: PolicyApplier;
  reconciler: () => Reconciler;
}): DirectAttach {
  const ahead = new Map<string, { netns: string; name: string }>(); // container id ->
  const removed = new Set<string>(); // container ids
  const inState = (id: string): boolean => deps.state.containerById(id) !== undefined;

  const plumb = async (detail: ContainerDetail): Promise<SandboxRecord | undefined> => {
    const c = containerFromWire(detail.container!);
    const sb = desiredSandbox(c, detail.endpoints.map(endpointFromWire), deps.state.networks, deps.host, deps.netnsPrefix);
    if (sb.interfaces.length === 0) return undefined;
    // The few host devices the plan looks at, from sysfs (no process per ADD).
    const names = sb.interfaces.flatMap((i) => [i.bridge, i.parent, i.hostVeth]).filter((n) => n !== '');
    const links = new Set(names.filter((n) => existsSync(`/sys/class/net/${n}`)));
    if (!sb.interfaces.every((i) => links.has(i.kind === 'macvlan' ? i.parent : i.bridge))) return undefined;
    ahead.set(c.id, { netns: sb.netns, name: c.name });
    const existing = existsSync(`/run/netns/${sb.netns}`) ? new Set([sb.netns]) : new Set<string>();
    const rules = desiredSandboxRules(sb, serviceTraffic(deps.state).vips);
    const r = await deps.sandboxes.ensure(sb, existing, links, true, rules);
    if (r.rulesApplied) deps.policy.believe(sb.netns, rules);
    return r.record;
  };

  return {
    attach(claim) {
      return deps.reconciler().exclusive(async () => {
        const detail = await claim();
        try {
          return { detail, record: await plumb(detail) };
        } catch (error) {
          return { detail, record: undefined, error }; // claimed but not plumbed: the caller undoes the claim
        }
      });
    },
    drop: (id) => void ahead.delete(id),
    detach(name, release) {
      return deps.reconciler().exclusive(async () => {
        await release();
        const shown = deps.state.containers.get(nameKey(name));
        if (shown) removed.add(shown.id);
        for (const [id, a] of ahead) if (a.name === name) ahead.delete(id);
        for (const r of await deps.sandboxes.records()) if (r.name === name) await deps.sandboxes.remove(r);
      });
    },
    isRemoved: (id) => removed.has(id),
    pending() {
      // The state the run is about to plan from shows it: the run itself takes over.
      for (const id of [...ahead.keys()]) if (inState(id)) ahead.delete(id);
      for (const id of [...removed]) if (!inState(id)) removed.delete(id);
      return { ids: new Set(ahead.keys()), netns: new Set([...ahead.values()].map((a) => a.netns)), removed: new Set(removed) };
    },
  };
}
