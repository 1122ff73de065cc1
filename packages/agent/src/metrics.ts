import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface AgentMetrics {
  readonly registry: Registry;
  readonly reconciles: Counter<'reason' | 'result'>;
  readonly reconcileSeconds: Histogram;
  readonly opsApplied: Counter<'op'>;
  readonly opsFailed: Counter<'op'>;
  readonly driftRepairs: Counter;
  readonly appliedRevision: Gauge;
  readonly connected: Gauge;
  readonly sandboxes: Gauge;
  readonly taskRestarts: Counter;
  readonly dockerCallSeconds: Histogram<'method' | 'result'>;
  /** The embedded DNS server's hooks: queries by outcome, answers' latency by kind. */
  readonly dns: { query(outcome: string): void; answered(kind: 'local' | 'forwarded', seconds: number): void };
}

export function createAgentMetrics(): AgentMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ctnet_agent_' });
  const r = [registry];
  const dnsQueries = new Counter({
    name: 'ctnet_agent_dns_queries_total',
    help: 'Embedded DNS queries by outcome (a, ptr, nodata, nxdomain, refused, isolated, busy, forwarded, servfail = no upstream answered, malformed:<reason>)',
    labelNames: ['outcome'],
    registers: r,
  });
  const dnsSeconds = new Histogram({
    name: 'ctnet_agent_dns_answer_seconds',
    help: 'Embedded DNS: from a query to its answer, answered here (local) or by an upstream (forwarded)',
    labelNames: ['kind'],
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5],
    registers: r,
  });
  // Label children bound once: the DNS hot path does no label lookups.
  const byOutcome = new Map<string, ReturnType<typeof dnsQueries.labels>>();
  const byKind = { local: dnsSeconds.labels('local'), forwarded: dnsSeconds.labels('forwarded') };
  return {
    dns: {
      query(outcome) {
        let c = byOutcome.get(outcome);
        if (!c) byOutcome.set(outcome, (c = dnsQueries.labels(outcome)));
        c.inc();
      },
      answered: (kind, seconds) => byKind[kind].observe(seconds),
    },
    registry,
    reconciles: new Counter({ name: 'ctnet_agent_reconciles_total', help: 'Reconcile runs by trigger and result', labelNames: ['reason', 'result'], registers: r }),
    reconcileSeconds: new Histogram({
      name: 'ctnet_agent_reconcile_seconds',
      help: 'Time to read the kernel, plan and apply',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers: r,
    }),
    opsApplied: new Counter({ name: 'ctnet_agent_kernel_ops_total', help: 'Kernel operations applied, by kind', labelNames: ['op'], registers: r }),
    opsFailed: new Counter({ name: 'ctnet_agent_kernel_op_failures_total', help: 'Kernel operations that failed, by kind', labelNames: ['op'], registers: r }),
    driftRepairs: new Counter({
      name: 'ctnet_agent_drift_repairs_total',
      help: 'Kernel operations a periodic resync needed although the desired state had not changed (state altered behind our back)',
      registers: r,
    }),
    appliedRevision: new Gauge({ name: 'ctnet_agent_applied_revision', help: 'Last desired-state revision fully applied', registers: r }),
    connected: new Gauge({ name: 'ctnet_agent_manager_connected', help: '1 while a manager stream is up', registers: r }),
    sandboxes: new Gauge({ name: 'ctnet_agent_sandboxes', help: 'Local sandboxes', registers: r }),
    taskRestarts: new Counter({ name: 'ctnet_agent_task_restarts_total', help: 'Service tasks started again after their process ended', registers: r }),
    dockerCallSeconds: new Histogram({
      name: 'ctnet_agent_docker_call_seconds',
      help: 'Calls of the Docker network and IPAM plugin, by method and result (ok or refused)',
      labelNames: ['method', 'result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30],
      registers: r,
    }),
  };
}
