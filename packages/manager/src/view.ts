import { parseIPv4, unavailable, type Endpoint, type Network, type Node } from '@ctnet/core';
import { isCompactedError, type ChangeBatch, type ClusterChange, type NodeAck, type Store, type Watch } from '@ctnet/store';
import type { Logger } from './deps.js';

/**
 * The manager's in-memory copy of the cluster, kept by one list + watch of the whole root
 * (watching from the listed revision, so no change falls between the two). It serves fast
 * reads (node status, lag, allocation hints); every write still goes through an etcd
 * transaction, so a stale view can cost a retry but never a wrong answer.
 */
export interface ClaimSet {
  readonly taken: Set<number>;
  /** The address claimed most recently (highest create revision): where allocation resumes. */
  last?: { addr: number; createRevision: number };
}

export interface ClusterView {
  readonly networks: ReadonlyMap<string, Network>;
  readonly nodes: ReadonlyMap<string, Node>;
  readonly endpoints: ReadonlyMap<string, Endpoint>;
  readonly alive: ReadonlySet<string>;
  readonly acks: ReadonlyMap<string, NodeAck>;
  /** Latest revision at which desired state (networks, endpoints, nodes) changed. */
  readonly stateRevision: number;
  readonly revision: number;
  readonly loaded: boolean;
  claims(networkId: string): ClaimSet;
  networkByNameOrId(text: string): Network | undefined;
  /** Called after every applied batch (for the GC loop and metrics). */
  onChange(listener: () => void): void;
  /** Resolves once the first load succeeded; rejects never: it retries with backoff. */
  whenLoaded(): Promise<void>;
  requireLoaded(): void;
  close(): Promise<void>;
}

export function createClusterView(
  store: Store,
  log: Logger,
  describeEtcd: string,
  /** Runs (until it succeeds once) before the first load, e.g. to settle the cluster config. */
  init: () => Promise<void> = async () => undefined,
): ClusterView {
  let initialised = false;
  const networks = new Map<string, Network>();
  const nodes = new Map<string, Node>();
  const endpoints = new Map<string, Endpoint>();
  const alive = new Set<string>();
  const acks = new Map<string, NodeAck>();
  const claims = new Map<string, ClaimSet>();
  const listeners: (() => void)[] = [];
  let stateRevision = 0;
  let revision = 0;
  let loaded = false;
  let closed = false;
  let watch: Watch | undefined;
  let resolveLoaded: () => void = () => undefined;
  const loadedPromise = new Promise<void>((r) => (resolveLoaded = r));

  const claimSet = (networkId: string): ClaimSet => {
    let set = claims.get(networkId);
    if (!set) claims.set(networkId, (set = { taken: new Set() }));
    return set;
  };

  const apply = (c: ClusterChange): void => {
    switch (c.kind) {
      case 'network':
        if (c.value) networks.set(c.id, c.value);
        else {
          networks.delete(c.id);
          claims.delete(c.id);
        }
        return;
      case 'node':
        if (c.value) nodes.set(c.id, c.value);
        else nodes.delete(c.id);
        return;
      case 'endpoint':
        if (c.value) endpoints.set(c.id, c.value);
        else endpoints.delete(c.id);
        return;
      case 'claim': {
        const addr = parseIPv4(c.ip);
        const set = claimSet(c.networkId);
        if (c.owner === undefined) set.taken.delete(addr);
        else {
          set.taken.add(addr);
          if (!set.last || c.createRevision > set.last.createRevision) set.last = { addr, createRevision: c.createRevision };
        }
        return;
      }
      case 'alive':
        if (c.up) alive.add(c.node);
        else alive.delete(c.node);
        return;
      case 'ack':
        if (c.value) acks.set(c.node, c.value);
        else acks.delete(c.node);
        return;
    }
  };

  const applyBatch = (batch: ChangeBatch): void => {
    for (const c of batch.changes) {
      apply(c);
      if (c.kind === 'network' || c.kind === 'node' || c.kind === 'endpoint') stateRevision = Math.max(stateRevision, batch.revision);
    }
    revision = Math.max(revision, batch.revision);
    for (const l of listeners) l();
  };

  const load = async (): Promise<void> => {
    for (let delay = 250; !closed; delay = Math.min(delay * 2, 10_000)) {
      try {
        if (!initialised) {
          await init();
          initialised = true;
        }
        const all = await store.loadAll();
        for (const m of [networks, nodes, endpoints, alive, acks, claims]) m.clear();
        for (const c of all.changes) apply(c);
        stateRevision = all.revision;
        revision = all.revision;
        watch = await store.watch('all', all.revision, applyBatch, (err) => {
          // Compaction or a cancelled watch: start over from a fresh list.
          log.warn('cluster watch ended; reloading', { reason: err instanceof Error ? err.message : String(err), compacted: isCompactedError(err) });
          void watch?.cancel().catch(() => undefined);
          if (!closed) void load();
        });
        if (!loaded) log.info('connected to etcd', { revision: all.revision, networks: networks.size, nodes: nodes.size });
        loaded = true;
        resolveLoaded();
        for (const l of listeners) l();
        return;
      } catch (err) {
        log.warn(`waiting for etcd at ${describeEtcd}; retrying in ${delay} ms`, { error: err instanceof Error ? err.message : String(err) });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  };
  void load();

  return {
    networks,
    nodes,
    endpoints,
    alive,
    acks,
    get stateRevision() {
      return stateRevision;
    },
    get revision() {
      return revision;
    },
    get loaded() {
      return loaded;
    },
    claims: claimSet,
    networkByNameOrId(text) {
      const byId = networks.get(text);
      if (byId) return byId;
      const lower = text.toLowerCase();
      for (const n of networks.values()) if (n.name.toLowerCase() === lower) return n;
      // Docker accepts a unique id prefix.
      if (text.length >= 4) {
        const matches = [...networks.values()].filter((n) => n.id.startsWith(text));
        if (matches.length === 1) return matches[0];
      }
      return undefined;
    },
    onChange: (l) => void listeners.push(l),
    whenLoaded: () => loadedPromise,
    requireLoaded() {
      if (!loaded) throw unavailable(`the manager is still connecting to etcd at ${describeEtcd}; retry in a moment`);
    },
    async close() {
      closed = true;
      await watch?.cancel().catch(() => undefined);
    },
  };
}
