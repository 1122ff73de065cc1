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
  readonly etcdUp: Gauge;
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
    etcdUp: new Gauge({ name: 'ctnet_manager_etcd_up', help: '1 when the manager has a live view of etcd', registers: [registry] }),
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
