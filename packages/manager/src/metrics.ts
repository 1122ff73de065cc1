import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The manager's Prometheus metrics, on a registry of its own (several managers may share a process in tests). */
export interface ManagerMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'method' | 'code'>;
  readonly requestSeconds: Histogram<'method'>;
  readonly allocations: Counter<'result'>;
  readonly agentSessions: Gauge;
  readonly nodes: Gauge<'status'>;
  readonly stateRevision: Gauge;
  readonly gcEndpoints: Counter;
  readonly convergeSeconds: Histogram<'change'>;
  readonly tasks: Counter<'event'>;
}

export function createManagerMetrics(): ManagerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ctnet_manager_' });
  return {
    registry,
    requests: new Counter({
      name: 'ctnet_manager_requests_total',
      help: 'API calls by method and result code',
      labelNames: ['method', 'code'],
      registers: [registry],
    }),
    requestSeconds: new Histogram({
      name: 'ctnet_manager_request_seconds',
      help: 'API call latency',
      labelNames: ['method'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [registry],
    }),
    allocations: new Counter({
      name: 'ctnet_ipam_allocation_attempts_total',
      help: 'Address claim transactions by outcome (ok, address-taken, name-taken, ...)',
      labelNames: ['result'],
      registers: [registry],
    }),
    agentSessions: new Gauge({ name: 'ctnet_manager_agent_sessions', help: 'Agent streams connected to this manager', registers: [registry] }),
    nodes: new Gauge({ name: 'ctnet_nodes', help: 'Registered nodes by status', labelNames: ['status'], registers: [registry] }),
    stateRevision: new Gauge({ name: 'ctnet_state_revision', help: 'Latest etcd revision of the desired state', registers: [registry] }),
    gcEndpoints: new Counter({
      name: 'ctnet_manager_gc_endpoints_total',
      help: 'Endpoints removed because their node stayed down beyond the grace period',
      registers: [registry],
    }),
    convergeSeconds: new Histogram({
      name: 'ctnet_manager_service_converge_seconds',
      help: 'From a service create or scale to every task running and every ready node having applied it',
      labelNames: ['change'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    tasks: new Counter({
      name: 'ctnet_manager_task_events_total',
      help: 'Orchestrator actions on tasks (created, retired, removed, unknown)',
      labelNames: ['event'],
      registers: [registry],
    }),
  };
}

/** What the scrape-time gauges read: the cluster view (no etcd reads), and one etcd probe. */
export interface ClusterGaugeSource {
  ipam(): readonly { readonly network: string; readonly allocated: number; readonly assignable: number }[];
  nodes(): readonly { readonly node: string; readonly ready: boolean; readonly lag: number }[];
  /** Whether etcd answers now (the same probe as /healthz). */
  etcdUp(): Promise<boolean>;
}

/**
 * Gauges computed when Prometheus scrapes, from the manager's view: per network and per node,
 * so a removed network or node simply stops being reported (each collect starts empty).
 */
export function registerClusterGauges(registry: Registry, src: ClusterGaugeSource): void {
  const r = [registry];
  new Gauge({
    name: 'ctnet_ipam_allocated_addresses',
    help: 'Addresses claimed in a network (endpoints, containers, tasks, VIPs)',
    labelNames: ['network'],
    registers: r,
    collect() {
      this.reset();
      for (const n of src.ipam()) this.set({ network: n.network }, n.allocated);
    },
  });
  new Gauge({
    name: 'ctnet_ipam_assignable_addresses',
    help: "Addresses a network can hand out (its range less the gateway and reserved ones; a pooled bridge network's host subnets together)",
    labelNames: ['network'],
    registers: r,
    collect() {
      this.reset();
      for (const n of src.ipam()) this.set({ network: n.network }, n.assignable);
    },
  });
  new Gauge({
    name: 'ctnet_node_ready',
    help: '1 while the node holds its liveness lease (its agent streams to a manager), 0 when down',
    labelNames: ['node'],
    registers: r,
    collect() {
      this.reset();
      for (const n of src.nodes()) this.set({ node: n.node }, n.ready ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ctnet_node_lag_revisions',
    help: "Desired-state revisions the node has not yet applied (ctmgr node ls's LAG): 0 when converged",
    labelNames: ['node'],
    registers: r,
    collect() {
      this.reset();
      for (const n of src.nodes()) this.set({ node: n.node }, n.lag);
    },
  });
  new Gauge({
    name: 'ctnet_manager_etcd_up',
    help: '1 when etcd answers this manager now (probed at each scrape, as /healthz does)',
    registers: r,
    async collect() {
      this.set((await src.etcdUp()) ? 1 : 0);
    },
  });
}
