import { existsSync } from 'node:fs';
import { desiredSandbox, desiredSandboxRules, serviceTraffic, type HostContext } from '@ctnet/core';
import { containerFromWire, endpointFromWire, type ContainerDetail } from '@ctnet/proto';
import type { PolicyApplier } from '../nft/policy.js';
import type { Reconciler } from '../reconciler.js';
import type { SandboxRecord, SandboxRuntime } from '../sandbox/runtime.js';
import type { LocalState } from '../state.js';

/**
 * A CNI attachment programmed the moment the manager has claimed it, from the manager's own
 * answer, instead of after the stream has brought it and a whole run has gone by. It runs
 * as the reconciler's exclusive job (never beside a run) through the same plan and apply as
 * every sandbox; until the stream brings the container, runs leave its sandbox alone
 * (pending). When the network has nothing on this host yet (its bridge is made by a run),
 * it does nothing and the caller waits for the run.
 */
export interface DirectAttach {
  /**
   * Claims (the manager call) and plumbs in one exclusive job, so no run starts in between:
   * the record once plumbed, or undefined when it is left to the next run.
   */
  attach(claim: () => Promise<ContainerDetail>): Promise<{ detail: ContainerDetail; record: SandboxRecord | undefined; error?: unknown }>;
  /** Forgets an attachment given up on (its ADD failed). */
  drop(containerId: string): void;
  /**
   * Releases (the manager call) and takes the interfaces out in one exclusive job: no run
   * tears it down on its own in between, nor makes it again before the stream says it is gone.
   */
  detach(containerId: string, release?: () => Promise<unknown>): Promise<void>;
  /** What runs must leave alone: attachments made here that the state does not hold yet, and ones taken out ahead of it. */
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
  const ahead = new Map<string, string>(); // container id -> namespace name
  // Seen in the state by one run: the next run planned from a state that holds it (a run may
  // start before the stream brings it and ask after, so one sighting is not enough).
  const seen = new Set<string>();
  // Taken out here before the stream says so: id -> runs that have seen it absent from the state.
  const removed = new Map<string, number>();
  const inState = (id: string): boolean => [...deps.state.containers.values()].some((c) => c.id === id);
  const plumb = async (detail: ContainerDetail): Promise<SandboxRecord | undefined> => {
    const c = containerFromWire(detail.container!);
    const sb = desiredSandbox(c, detail.endpoints.map(endpointFromWire), deps.state.networks, deps.host, deps.netnsPrefix);
    if (sb.interfaces.length === 0) return undefined;
    // The few host devices the plan looks at, from sysfs (no process per ADD).
    const names = sb.interfaces.flatMap((i) => [i.bridge, i.parent, i.hostVeth]).filter((n) => n !== '');
    const links = new Set(names.filter((n) => existsSync(`/sys/class/net/${n}`)));
    if (!sb.interfaces.every((i) => links.has(i.kind === 'macvlan' ? i.parent : i.bridge))) return undefined;
    ahead.set(c.id, sb.netns);
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
    drop(id) {
      ahead.delete(id);
      seen.delete(id);
    },
    detach(id, release) {
      return deps.reconciler().exclusive(async () => {
        await release?.();
        ahead.delete(id);
        seen.delete(id);
        removed.set(id, 0);
        for (const r of await deps.sandboxes.records()) if (r.containerId === id) await deps.sandboxes.remove(r);
      });
    },
    pending() {
      for (const [id, absent] of removed) {
        if (inState(id)) continue;
        if (absent >= 1) removed.delete(id);
        else removed.set(id, absent + 1);
      }
      for (const id of [...ahead.keys()]) {
        if (!inState(id)) continue;
        if (seen.has(id)) {
          ahead.delete(id);
          seen.delete(id);
        } else seen.add(id);
      }
      return { ids: new Set(ahead.keys()), netns: new Set(ahead.values()), removed: new Set(removed.keys()) };
    },
  };
}
