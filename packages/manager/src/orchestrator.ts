import {
  isVirtualIp,
  nameKey,
  planService,
  removableTasks,
  taskName,
  type Container,
  type Endpoint,
  type Network,
  type Service,
  type TaskStatus,
} from '@ctnet/core';
import type { ManagerDeps } from './deps.js';
import { newId } from './handlers/networks.js';
import { nodesHoldingHostPorts } from './handlers/ports.js';

/**
 * Makes services real, from state (like the agent's reconciler): on every change of the view
 * and every second, for each service, fill empty slots (spread), retire surplus tasks, give a
 * vip-mode service its virtual IPs, and remove retiring tasks once every ready node has
 * withdrawn their DNS records. One manager does this at a time (an etcd election); the
 * others stand by.
 *
 * Retiring is two steps so that DNS never answers with a task that is going away: first the
 * task is marked `desired: shutdown` (every agent drops its records; its node keeps it
 * running), then, once all ready nodes acknowledged that revision, the task is deleted (its
 * node stops it, its address is released).
 */
export interface Orchestrator {
  /** Runs a pass soon (after a write the caller made). */
  kick(): void;
  /** Starts the convergence clock for a service (create, scale). */
  expect(serviceId: string, change: 'create' | 'scale'): void;
  /** Why a service's tasks wait, if they do. */
  pendingReason(serviceId: string): string | undefined;
  readonly leading: boolean;
  stop(): Promise<void>;
}

export interface OrchestratorOptions {
  readonly intervalMs?: number;
  /** A retiring task is removed after this long even if some agent never acknowledged. */
  readonly retireTimeoutMs?: number;
}

export interface ServiceProgress {
  readonly tasks: Container[];
  readonly running: number;
  readonly retiring: number;
  readonly nodesReady: number;
  readonly nodesConverged: number;
  readonly revision: number;
  readonly converged: boolean;
}

/** How far the cluster is with a service (from the view; pure apart from reading it). */
export function serviceProgress(deps: ManagerDeps, service: Service): ServiceProgress {
  const { view } = deps;
  const tasks = [...view.containers.values()].filter((c) => c.task?.serviceId === service.id);
  const active = tasks.filter((t) => t.task!.desired === 'running');
  const running = active.filter((t) => t.status?.state === 'running').length;
  const retiring = tasks.length - active.length;
  const revision = view.serviceRevisions.get(service.id) ?? 0;
  let nodesReady = 0;
  let nodesConverged = 0;
  for (const key of view.nodes.keys()) {
    if (!view.alive.has(key)) continue;
    nodesReady++;
    if ((view.acks.get(key)?.revision ?? 0) >= revision) nodesConverged++;
  }
  const converged = running === service.replicas && active.length === service.replicas && retiring === 0 && nodesConverged === nodesReady;
  return { tasks, running, retiring, nodesReady, nodesConverged, revision, converged };
}

export function startOrchestrator(deps: ManagerDeps, opts: OrchestratorOptions = {}): Orchestrator {
  const { view, store, log, metrics } = deps;
  const retireTimeoutMs = opts.retireTimeoutMs ?? 3000;
  const pending = new Map<string, string>();
  const retiringSince = new Map<string, { revision: number; since: number }>(); // by task name
  const clocks = new Map<string, { began: number; change: 'create' | 'scale' }>();
  let leading = false;
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  let resign: (() => Promise<void>) | undefined;

  const now = () => deps.clock.now();
  const warn = (what: string, err: unknown) => log.warn(what, { error: err instanceof Error ? err.message : String(err) });

  const createTask = async (svc: Service, slot: number, node: string, nets: Network[]): Promise<void> => {
    const id = newId();
    const name = taskName(svc.name, slot, id);
    const createdAt = new Date(now()).toISOString();
    const publish = svc.publish ?? [];
    const ingress = publish.filter((p) => p.mode === 'ingress');
    const hostPorts = publish.filter((p) => p.mode === 'host').map((p) => ({ protocol: p.protocol, hostIp: '', hostPort: p.published, containerPort: p.target }));
    const container: Container = {
      id,
      name,
      node,
      cmd: svc.cmd,
      env: svc.env,
      hostname: id.slice(0, 12), // as Swarm: the task's short id
      dns: [],
      dnsSearch: [],
      createdAt,
      mode: 'network',
      sharedWith: '',
      attachPid: 0,
      task: { serviceId: svc.id, service: svc.name, slot, endpointMode: svc.endpointMode, desired: 'running', ...(ingress.length > 0 && { publish: ingress }) },
      // host mode: the task publishes on its own node like `-p` (one task per node, see planService)
      ...(hostPorts.length > 0 && { ports: hostPorts }),
      ...(publish.length > 0 && { expose: publish.map((p) => ({ port: p.target, protocol: p.protocol })) }),
    };
    const [first, ...rest] = nets;
    await deps.allocator.createEndpoint(first!, { network: first!.id, node, name, aliases: [], container: id }, newId(), createdAt, container);
    for (const net of rest) {
      await deps.allocator.createEndpoint(net, { network: net.id, node, name, aliases: [], container: id }, newId(), new Date(now()).toISOString(), undefined, container);
    }
    metrics.tasks.inc({ event: 'created' });
    log.info('task created', { task: name, node });
  };

  const retire = async (task: Container, why: string): Promise<void> => {
    const revision = await store.updateContainer(task.name, task.id, (c) => ({ ...c, task: { ...c.task!, desired: 'shutdown' } }));
    if (revision === undefined) return; // already gone
    retiringSince.set(task.name, { revision, since: now() });
    metrics.tasks.inc({ event: 'retired' });
    log.info('task retiring', { task: task.name, why });
  };

  /** `existing`: network id -> names of the virtual IPs it has. */
  const ensureVips = async (svc: Service, nets: Network[], existing: ReadonlyMap<string, ReadonlySet<string>>): Promise<void> => {
    for (const net of nets) {
      if (existing.get(net.id)?.has(nameKey(svc.name))) continue;
      await deps.allocator.createEndpoint(net, { network: net.id, node: '', name: svc.name, aliases: [] }, newId(), new Date(now()).toISOString());
      log.info('service virtual IP allocated', { service: svc.name, network: net.name });
    }
  };

  const pass = async (): Promise<void> => {
    if (!leading || !view.loaded) return;
    const ready = [...view.nodes.entries()].filter(([k]) => view.alive.has(k)).map(([, n]) => n);
    const load = new Map<string, number>();
    for (const c of view.containers.values()) load.set(nameKey(c.node), (load.get(nameKey(c.node)) ?? 0) + 1);
    const byService = new Map<string, Container[]>();
    for (const c of view.containers.values()) {
      if (!c.task) continue;
      const list = byService.get(c.task.serviceId);
      if (list) list.push(c);
      else byService.set(c.task.serviceId, [c]);
    }
    // One pass over the endpoints: each task's networks, and the virtual IPs that exist.
    const networksOf = new Map<string, Set<string>>(); // container id -> network ids
    const vips = new Map<string, Set<string>>(); // network id -> names of its virtual IPs
    const vipEndpoints: Endpoint[] = [];
    for (const e of view.endpoints.values()) {
      if (isVirtualIp(e)) {
        (vips.get(e.networkId) ?? vips.set(e.networkId, new Set()).get(e.networkId)!).add(nameKey(e.name));
        vipEndpoints.push(e);
      } else if (e.container) (networksOf.get(e.container) ?? networksOf.set(e.container, new Set()).get(e.container)!).add(e.networkId);
    }
    const work: Promise<void>[] = [];
    const vipNames = new Map<string, Set<string>>(); // network id -> vip-mode service names
    for (const svc of view.services.values()) {
      const nets = svc.networks.map((id) => view.networks.get(id)).filter((n): n is Network => n !== undefined);
      if (nets.length !== svc.networks.length) continue; // a network vanished: nothing sensible to do
      if (svc.endpointMode === 'vip') {
        for (const n of nets) (vipNames.get(n.id) ?? vipNames.set(n.id, new Set()).get(n.id)!).add(nameKey(svc.name));
        // `service create` allocates them itself (so a full pool is its caller's error); this repairs.
        if (now() - Date.parse(svc.createdAt) > 5000) work.push(ensureVips(svc, nets, vips).catch((err) => warn(`virtual IP for service ${svc.name} failed; will retry`, err)));
      }
      const tasks = byService.get(svc.id) ?? [];
      const hostMode = (svc.publish ?? []).some((p) => p.mode === 'host');
      const plan = planService(svc, tasks, ready, load, hostMode ? { onePerNode: true, blocked: nodesHoldingHostPorts(deps, svc.id, svc.publish ?? []) } : undefined);
      if (plan.pending) pending.set(svc.id, plan.pending);
      else pending.delete(svc.id);
      for (const { slot, node } of plan.create) {
        work.push(createTask(svc, slot, node, nets).catch((err) => warn(`creating task ${svc.name}.${slot} failed; will retry`, err)));
      }
      for (const name of plan.shutdown) {
        const task = tasks.find((t) => t.name === name)!;
        work.push(retire(task, 'scaled down').catch((err) => warn(`retiring ${name} failed; will retry`, err)));
      }
      // A task short of one of its networks (a create cut short): connect it.
      for (const t of tasks) {
        if (t.task!.desired !== 'running') continue;
        const have = networksOf.get(t.id);
        if (!have) continue; // its first endpoint is written with it: not ours to guess
        for (const net of nets.filter((n) => !have.has(n.id))) {
          work.push(
            deps.allocator
              .createEndpoint(net, { network: net.id, node: t.node, name: t.name, aliases: [], container: t.id }, newId(), new Date(now()).toISOString(), undefined, t)
              .then(() => undefined, (err) => warn(`connecting ${t.name} to ${net.name} failed; will retry`, err)),
          );
        }
      }
    }
    const serviceIds = new Set([...view.services.values()].map((s) => s.id));
    for (const [serviceId, tasks] of byService) {
      if (serviceIds.has(serviceId)) continue;
      for (const t of tasks) if (t.task!.desired === 'running') work.push(retire(t, 'service removed').catch((err) => warn(`retiring ${t.name} failed`, err)));
    }
    // Virtual IPs of services that are gone (or no longer on that network).
    for (const ep of vipEndpoints) {
      if (vipNames.get(ep.networkId)?.has(nameKey(ep.name))) continue;
      work.push(store.deleteEndpoint(ep.networkId, ep.name).then(() => undefined, (err) => warn(`releasing virtual IP ${ep.ip} failed`, err)));
    }
    // A node that went down: its tasks do not serve (their records go) until it reports again.
    for (const c of view.containers.values()) {
      if (!c.task || view.alive.has(nameKey(c.node)) || c.status?.state !== 'running') continue;
      const status: TaskStatus = { ...c.status, state: 'unknown', message: `node ${c.node} is down`, since: new Date(now()).toISOString() };
      work.push(store.updateContainer(c.name, c.id, (x) => ({ ...x, status })).then(() => metrics.tasks.inc({ event: 'unknown' }), (err) => warn(`marking ${c.name} unknown failed`, err)));
    }
    // Retiring tasks go once every ready node applied their withdrawal.
    const retiring = [...view.containers.values()].filter((c) => c.task?.desired === 'shutdown');
    for (const name of [...retiringSince.keys()]) if (!retiring.some((c) => c.name === name)) retiringSince.delete(name);
    const entries = retiring.map((c) => {
      const seen = retiringSince.get(c.name) ?? { revision: view.stateRevision, since: now() }; // first seen here (e.g. after failover)
      retiringSince.set(c.name, seen);
      return { name: c.name, ...seen };
    });
    const acks = ready.map((n) => view.acks.get(nameKey(n.name))?.revision ?? 0);
    for (const name of removableTasks(entries, acks, now(), retireTimeoutMs)) {
      work.push(
        store.deleteContainer(name).then(
          () => {
            retiringSince.delete(name);
            metrics.tasks.inc({ event: 'removed' });
          },
          (err) => warn(`removing ${name} failed; will retry`, err),
        ),
      );
    }
    await Promise.all(work);
    // The next pass must see what this one wrote, or it would fill the same slots again.
    if (work.length > 0) await view.waitForRevision(await store.currentRevision());
    observeConvergence();
  };

  const observeConvergence = (): void => {
    for (const [id, clock] of clocks) {
      const svc = [...view.services.values()].find((s) => s.id === id);
      if (!svc) {
        clocks.delete(id);
        continue;
      }
      if (!serviceProgress(deps, svc).converged) continue;
      metrics.convergeSeconds.observe({ change: clock.change }, (now() - clock.began) / 1000);
      clocks.delete(id);
    }
  };

  const loop = async (): Promise<void> => {
    while (again && !stopped) {
      again = false;
      await pass().catch((err) => warn('orchestrator pass failed; will retry', err));
    }
    running = undefined;
  };
  const kick = (): void => {
    again = true;
    running ??= loop();
  };

  view.onChange(() => {
    if (leading) kick();
    else if (clocks.size > 0) observeConvergence();
  });
  const timer = setInterval(kick, opts.intervalMs ?? 1000);
  timer.unref();

  const campaign = (): void => {
    if (stopped) return;
    store
      .campaign(
        `manager-${newId().slice(0, 12)}`,
        () => {
          leading = true;
          log.info('orchestrating services (elected)');
          kick();
        },
        (err) => {
          leading = false;
          warn('lost the orchestrator election; campaigning again', err);
          setTimeout(campaign, 1000).unref();
        },
      )
      .then(
        (c) => (resign = c.resign),
        (err) => {
          warn('cannot campaign for the orchestrator role yet; retrying', err);
          setTimeout(campaign, 1000).unref();
        },
      );
  };
  void view.whenLoaded().then(campaign);

  return {
    kick,
    expect: (serviceId, change) => void clocks.set(serviceId, { began: now(), change }),
    pendingReason: (id) => pending.get(id),
    get leading() {
      return leading;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      while (running) await running;
      await resign?.();
    },
  };
}
