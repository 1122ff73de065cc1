import { parseIPv4, unavailable, type Container, type Endpoint, type Network, type Node, type Service } from '@ctnet/core';
import { isCompactedError, type ChangeBatch, type ClusterChange, type NodeAck, type Store, type Watch } from '@ctnet/store';
import type { Logger } from './deps.js';
import { createStateFeed, isStateChange, type StateFeed } from './state-feed.js';

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
  readonly containers: ReadonlyMap<string, Container>;
  readonly services: ReadonlyMap<string, Service>;
  /** Service id -> the latest revision that changed one of its tasks (what agents must have applied). */
  readonly serviceRevisions: ReadonlyMap<string, number>;
  readonly alive: ReadonlySet<string>;
  readonly acks: ReadonlyMap<string, NodeAck>;
  /** Latest revision at which desired state (networks, endpoints, nodes) changed. */
  readonly stateRevision: number;
  readonly revision: number;
  readonly loaded: boolean;
  claims(networkId: string): ClaimSet;
  networkByNameOrId(text: string): Network | undefined;
  /** Desired-state changes as they are applied, with a window for resuming agents. */
  readonly feed: StateFeed;
  /** The desired state at `revision`, from memory. */
  stateSnapshot(): { revision: number; networks: Network[]; endpoints: Endpoint[]; nodes: Node[]; containers: Container[] };
  /** Resolves once the view has applied `revision` (e.g. a write this manager just made). */
  waitForRevision(revision: number, timeoutMs?: number): Promise<void>;
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
  const containers = new Map<string, Container>();
  const services = new Map<string, Service>();
  const serviceRevisions = new Map<string, number>();
  const touch = (serviceId: string | undefined, revision: number) => {
    if (serviceId && revision > (serviceRevisions.get(serviceId) ?? 0)) serviceRevisions.set(serviceId, revision);
  };
  const alive = new Set<string>();
  const acks = new Map<string, NodeAck>();
  const claims = new Map<string, ClaimSet>();
  const listeners: (() => void)[] = [];
  const feed = createStateFeed();
  let stateRevision = 0;
  let revision = 0;
  let loaded = false;
  let closed = false;
  const watches: Watch[] = [];
  let reloading = false;
  let generation = 0; // bumped per load; errors from older watches are ignored
  let resolveLoaded: () => void = () => undefined;
  const loadedPromise = new Promise<void>((r) => (resolveLoaded = r));

  const claimSet = (networkId: string): ClaimSet => {
    let set = claims.get(networkId);
    if (!set) claims.set(networkId, (set = { taken: new Set() }));
    return set;
  };

  const claim = (networkId: string, ip: string, createRevision: number): void => {
    const addr = parseIPv4(ip);
    const set = claimSet(networkId);
    set.taken.add(addr);
    if (!set.last || createRevision > set.last.createRevision) set.last = { addr, createRevision };
  };

  /** `revision` is the batch's: an endpoint's claim is created in the same transaction. */
  const apply = (c: ClusterChange, revision: number): void => {
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
      case 'container':
        touch((c.value ?? containers.get(c.id))?.task?.serviceId, revision);
        if (c.value) containers.set(c.id, c.value);
        else containers.delete(c.id);
        return;
      case 'service':
        // Not touched: agents never see service records, so they never ack their revisions.
        if (c.value) services.set(c.id, c.value);
        else services.delete(c.id);
        return;
      case 'endpoint': {
        // Claims and endpoints are written and removed together, so after the initial load
        // the view follows claims through endpoint changes and need not watch ipam/ at all.
        const before = endpoints.get(c.id);
        if (c.value) {
          endpoints.set(c.id, c.value);
          if (!before && revision > 0) claim(c.value.networkId, c.value.ip, revision);
        } else {
          endpoints.delete(c.id);
          if (before) claims.get(before.networkId)?.taken.delete(parseIPv4(before.ip));
        }
        return;
      }
      case 'claim':
        if (c.owner === undefined) claims.get(c.networkId)?.taken.delete(parseIPv4(c.ip));
        else claim(c.networkId, c.ip, c.createRevision);
        return;
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
    for (const c of batch.changes) apply(c, batch.revision);
    revision = Math.max(revision, batch.revision);
    const state = batch.changes.filter(isStateChange);
    if (state.length > 0) {
      stateRevision = Math.max(stateRevision, batch.revision);
      feed.append(state.length === batch.changes.length ? batch : { revision: batch.revision, changes: state });
    }
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
        const before = loaded ? stateMaps() : undefined;
        for (const m of [networks, nodes, endpoints, containers, services, alive, acks, claims]) m.clear();
        for (const c of all.changes) apply(c, 0); // claims come from the ipam/ keys here
        revision = all.revision;
        if (before) {
          // A reload (the watch was lost): hand live agent streams the difference as one
          // batch, so they stay exact without a snapshot.
          const diff = diffState(before, stateMaps());
          if (diff.length > 0) {
            stateRevision = all.revision;
            feed.append({ revision: all.revision, changes: diff });
          }
        } else {
          stateRevision = all.revision;
          feed.resetFloor(all.revision);
        }
        const gen = ++generation;
        const onError = (err: unknown): void => {
          if (gen !== generation) return; // a watch of an earlier load: already replaced
          generation++;
          // Compaction or a cancelled watch: start over from a fresh list.
          log.warn('cluster watch ended; reloading', { reason: err instanceof Error ? err.message : String(err), compacted: isCompactedError(err) });
          for (const w of watches.splice(0)) void w.cancel().catch(() => undefined);
          if (!closed && !reloading) {
            reloading = true;
            void load().finally(() => (reloading = false));
          }
        };
        for (const w of watches.splice(0)) await w.cancel().catch(() => undefined);
        watches.push(await store.watch('state', all.revision, applyBatch, onError));
        watches.push(await store.watch('status', all.revision, applyBatch, onError));
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
  const stateMaps = (): StateMaps => ({
    networks: new Map(networks),
    endpoints: new Map(endpoints),
    nodes: new Map(nodes),
    containers: new Map(containers),
  });
  reloading = true;
  void load().finally(() => (reloading = false));

  return {
    feed,
    stateSnapshot: () => ({
      revision,
      networks: [...networks.values()],
      endpoints: [...endpoints.values()],
      nodes: [...nodes.values()],
      containers: [...containers.values()],
    }),
    networks,
    nodes,
    endpoints,
    containers,
    services,
    serviceRevisions,
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
    waitForRevision(target, timeoutMs = 5000) {
      if (revision >= target) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done(): void {
          clearTimeout(timer);
          const i = listeners.indexOf(check);
          if (i >= 0) listeners.splice(i, 1);
          resolve();
        }
        function check(): void {
          if (revision >= target) done();
        }
        listeners.push(check);
      });
    },
    whenLoaded: () => loadedPromise,
    requireLoaded() {
      if (!loaded) throw unavailable(`the manager is still connecting to etcd at ${describeEtcd}; retry in a moment`);
    },
    async close() {
      closed = true;
      for (const w of watches.splice(0)) await w.cancel().catch(() => undefined);
    },
  };
}

interface StateMaps {
  networks: ReadonlyMap<string, Network>;
  endpoints: ReadonlyMap<string, Endpoint>;
  nodes: ReadonlyMap<string, Node>;
  containers?: ReadonlyMap<string, Container>;
}

/** What changed between two copies of the desired state, as changes (pure). */
export function diffState(before: StateMaps, after: StateMaps): ClusterChange[] {
  const out: ClusterChange[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const maps = { network: 'networks', node: 'nodes', endpoint: 'endpoints', container: 'containers' } as const;
  for (const kind of ['network', 'node', 'container', 'endpoint'] as const) {
    const was = (before[maps[kind]] ?? new Map()) as ReadonlyMap<string, unknown>;
    const now = (after[maps[kind]] ?? new Map()) as ReadonlyMap<string, unknown>;
    for (const [id, value] of now) if (!same(was.get(id), value)) out.push({ kind, id, value } as ClusterChange);
    for (const id of was.keys()) if (!now.has(id)) out.push({ kind, id } as ClusterChange);
  }
  return out;
}
