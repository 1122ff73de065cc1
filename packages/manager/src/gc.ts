import { isVirtualIp, nameKey } from '@ctnet/core';
import type { ManagerDeps } from './deps.js';
import { forgetNode, removeNodeEndpoints } from './handlers/nodes.js';

/**
 * Removes the endpoints of nodes that stayed down longer than the grace period, releasing
 * their addresses. Every manager runs it: each removal is a compare-and-delete transaction,
 * so two managers sweeping at once remove each endpoint once. "Down since" is when this
 * manager first saw the node down, so a manager restart only ever lengthens the grace.
 * A node down for longer than the retention is forgotten altogether: its record goes and its
 * bridge subnets are freed (as `ctmgr node rm` does), so departed hosts do not pile up.
 */
export interface NodeGc {
  sweep(): Promise<void>;
  stop(): void;
}

export function startNodeGc(deps: ManagerDeps, intervalMs = 1000): NodeGc {
  const downSince = new Map<string, number>();
  const goneSince = new Map<string, number>();
  let running = false;

  const sweep = async (): Promise<void> => {
    if (running || !deps.view.loaded) return;
    running = true;
    try {
      const now = deps.clock.now();
      const withEndpoints = new Set<string>();
      // A service's virtual IPs are endpoints of no node: never "down".
      for (const ep of deps.view.endpoints.values()) if (!isVirtualIp(ep)) withEndpoints.add(nameKey(ep.node));
      for (const c of deps.view.containers.values()) withEndpoints.add(nameKey(c.node));
      for (const key of [...downSince.keys()]) if (deps.view.alive.has(key) || !withEndpoints.has(key)) downSince.delete(key);
      for (const key of withEndpoints) {
        if (deps.view.alive.has(key)) continue;
        const since = downSince.get(key) ?? now;
        downSince.set(key, since);
        if (now - since < deps.config.nodeGraceMs) continue;
        const removed = await removeNodeEndpoints(deps, key);
        deps.metrics.gcEndpoints.inc(removed);
        deps.log.warn('node down beyond the grace period: removed its endpoints', { node: key, removed, graceMs: deps.config.nodeGraceMs });
        downSince.delete(key);
      }
      for (const key of [...goneSince.keys()]) if (deps.view.alive.has(key) || !deps.view.nodes.has(key)) goneSince.delete(key);
      for (const [key, node] of deps.view.nodes) {
        if (deps.view.alive.has(key)) continue;
        const since = goneSince.get(key) ?? now;
        goneSince.set(key, since);
        if (now - since < Math.max(deps.config.nodeRetentionMs, deps.config.nodeGraceMs) || withEndpoints.has(key)) continue;
        await forgetNode(deps, node.name);
        goneSince.delete(key);
        deps.log.warn('node down beyond the retention period: removed it and freed its subnets', { node: node.name, retentionMs: deps.config.nodeRetentionMs });
      }
      let ready = 0;
      for (const key of deps.view.nodes.keys()) if (deps.view.alive.has(key)) ready++;
      deps.metrics.nodes.set({ status: 'ready' }, ready);
      deps.metrics.nodes.set({ status: 'down' }, deps.view.nodes.size - ready);
    } catch (err) {
      deps.log.warn('node sweep failed; will retry', { error: err instanceof Error ? err.message : String(err) });
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void sweep(), intervalMs);
  timer.unref();
  return { sweep, stop: () => clearInterval(timer) };
}
