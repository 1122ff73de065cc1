import type { ChangeBatch, ClusterChange } from '@ctnet/store';

/**
 * The manager's one fan-out of desired-state changes to agent streams, fed by the view's
 * single etcd watch (so etcd serves one watcher per manager, not one per agent), with a
 * bounded window of recent batches so a reconnecting agent can resume from memory — the
 * shape of kube-apiserver's watch cache. Outside the window, callers fall back to etcd.
 */
export interface StateFeed {
  /** Batches after `revision`, or undefined if the window no longer reaches back that far. */
  since(revision: number): ChangeBatch[] | undefined;
  /** Live batches from now on; returns the unsubscribe function. */
  subscribe(listener: (batch: ChangeBatch) => void): () => void;
  append(batch: ChangeBatch): void;
  /** Resets the window: nothing before `revision` can be replayed from memory. */
  resetFloor(revision: number): void;
  readonly floor: number;
}

export function isStateChange(c: ClusterChange): boolean {
  return c.kind === 'network' || c.kind === 'endpoint' || c.kind === 'node' || c.kind === 'container';
}

export function createStateFeed(maxBatches = 10_000): StateFeed {
  const window: ChangeBatch[] = [];
  const listeners = new Set<(batch: ChangeBatch) => void>();
  let floor = Number.POSITIVE_INFINITY;
  return {
    get floor() {
      return floor;
    },
    since(revision) {
      if (revision < floor) return undefined;
      // Batches are in revision order: find the first one after `revision`.
      let lo = 0;
      let hi = window.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (window[mid]!.revision <= revision) lo = mid + 1;
        else hi = mid;
      }
      return window.slice(lo);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => void listeners.delete(listener);
    },
    append(batch) {
      window.push(batch);
      if (window.length > maxBatches) {
        const dropped = window.splice(0, window.length - maxBatches);
        floor = Math.max(floor, dropped[dropped.length - 1]!.revision);
      }
      for (const l of listeners) l(batch);
    },
    resetFloor(revision) {
      window.length = 0;
      floor = revision;
    },
  };
}
