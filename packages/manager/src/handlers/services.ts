import {
  alreadyExists,
  failedPrecondition,
  isVirtualIp,
  nameKey,
  notFound,
  parseReplicas,
  parseServiceRequest,
  type Endpoint,
  type Network,
  type Service,
} from '@ctnet/core';
import {
  containerToWire,
  endpointToWire,
  serviceToWire,
  type CreateServiceRequest,
  type InspectServiceRequest,
  type ListServicesRequest,
  type ListServicesResponse,
  type RemoveServiceRequest,
  type RemoveServiceResponse,
  type ScaleServiceRequest,
  type ServiceDetail,
} from '@ctnet/proto';
import type { ManagerDeps } from '../deps.js';
import { serviceProgress } from '../orchestrator.js';
import { findNetwork, newId } from './networks.js';
import { assignServicePorts } from './ports.js';
import { describePortKey } from '../allocator.js';

/** The service's virtual IPs: bare endpoints of no node, named after it. */
const vipsOf = (deps: ManagerDeps, svc: Service): Endpoint[] =>
  [...deps.view.endpoints.values()].filter((e) => isVirtualIp(e) && nameKey(e.name) === nameKey(svc.name) && svc.networks.includes(e.networkId));

export function serviceDetail(deps: ManagerDeps, svc: Service): ServiceDetail {
  const p = serviceProgress(deps, svc);
  // One pass over the endpoints (the CLI polls this while it waits), not one per task.
  const ids = new Set(p.tasks.map((t) => t.id));
  const byContainer = new Map<string, Endpoint[]>();
  for (const e of deps.view.endpoints.values()) if (ids.has(e.container)) byContainer.set(e.container, [...(byContainer.get(e.container) ?? []), e]);
  const netName = (id: string) => deps.view.networks.get(id)?.name ?? id;
  return {
    service: serviceToWire(svc),
    tasks: p.tasks
      .sort((a, b) => a.task!.slot - b.task!.slot || a.createdAt.localeCompare(b.createdAt))
      .map((t) => ({ container: containerToWire(t), endpoints: (byContainer.get(t.id) ?? []).map(endpointToWire) })),
    vips: vipsOf(deps, svc).map((e) => ({ network: netName(e.networkId), ip: e.ip })),
    running: p.running,
    nodesReady: p.nodesReady,
    nodesConverged: p.nodesConverged,
    converged: p.converged,
    pending: deps.orchestrator.pendingReason(svc.id) ?? '',
    revision: p.revision,
  };
}

/** A service's name is answered on its networks, so no container there may carry it… */
function checkServiceNameFree(deps: ManagerDeps, name: string, networks: readonly Network[]): void {
  const key = nameKey(name);
  const ids = new Set(networks.map((n) => n.id));
  for (const ep of deps.view.endpoints.values()) {
    if (!ids.has(ep.networkId) || isVirtualIp(ep)) continue;
    if (nameKey(ep.name) === key || ep.aliases.some((a) => nameKey(a) === key)) {
      throw alreadyExists(
        `container ${ep.name} on network ${deps.view.networks.get(ep.networkId)?.name ?? ep.networkId} already answers to the name ${name} (${ep.ip}); choose another service name or remove it ("ctmgr rm -f ${ep.name}")`,
      );
    }
  }
}

/**
 * …and no container may answer, by its name or a --network-alias, to a service's name on one
 * of that service's networks. The view gives the clear answer at once; the name keys written
 * with the endpoint (store) are what enforce it against racing requests.
 */
export function checkContainerNameFree(deps: ManagerDeps, names: readonly string[], net: Network): void {
  for (const name of names) {
    const svc = deps.view.services.get(nameKey(name));
    if (svc && svc.networks.includes(net.id)) {
      throw alreadyExists(`a service named ${svc.name} is on network ${net.name}, and DNS answers its name there; choose another container name or --network-alias than ${name}`);
    }
  }
}

export async function createService(deps: ManagerDeps, req: CreateServiceRequest): Promise<ServiceDetail> {
  const spec = parseServiceRequest({
    name: req.name,
    networks: req.networks,
    replicas: req.replicas,
    endpointMode: req.endpointMode,
    constraints: req.constraints,
    cmd: req.cmd,
    env: req.env,
    publish: req.publish,
  });
  deps.view.requireLoaded();
  if (spec.endpointMode === 'dnsrr' && spec.publish.some((p) => p.mode === 'ingress')) {
    throw failedPrecondition('a dnsrr service cannot publish in ingress mode (the routing mesh balances over a virtual IP); use mode=host, or --endpoint-mode vip');
  }
  const nets: Network[] = [];
  for (const n of spec.networks) {
    const net = await findNetwork(deps, n);
    if (net.driver !== 'overlay') {
      throw failedPrecondition(`network ${net.name} is a ${net.driver} network; services span hosts and need an overlay network (ctmgr network create --driver overlay …)`);
    }
    if (nets.some((x) => x.id === net.id)) throw failedPrecondition(`network ${net.name} is given twice`);
    nets.push(net);
  }
  checkServiceNameFree(deps, spec.name, nets);
  const publish = assignServicePorts(deps, spec.publish);
  const at = new Date(deps.clock.now()).toISOString();
  const svc: Service = {
    id: newId(),
    name: spec.name,
    networks: nets.map((n) => n.id),
    replicas: spec.replicas,
    endpointMode: spec.endpointMode,
    constraints: spec.constraints.map((c) => c.text),
    cmd: spec.cmd,
    env: spec.env,
    createdAt: at,
    updatedAt: at,
    ...(publish.length > 0 && { publish }),
  };
  const outcome = await deps.store.createService(svc);
  if (!outcome.ok) {
    switch (outcome.reason) {
      case 'service-taken':
        throw alreadyExists(`a service named ${outcome.existing.name} already exists; choose another name, or scale it ("ctmgr service scale ${outcome.existing.name}=N")`);
      case 'port-taken':
        throw alreadyExists(`${describePortKey(outcome.port)} is already published by ${outcome.holder}; choose another published port, or leave it out to get a free one`);
      case 'name-taken':
        throw alreadyExists(
          `container ${outcome.holder} on network ${deps.view.networks.get(outcome.network)?.name ?? outcome.network} already answers to the name ${svc.name}; choose another service name or remove it ("ctmgr rm -f ${outcome.holder}")`,
        );
    }
  }
  if (svc.endpointMode === 'vip') {
    // Allocated here rather than by the orchestrator, so a full pool is the caller's error.
    try {
      for (const net of nets) {
        await deps.allocator.createEndpoint(net, { network: net.id, node: '', name: svc.name, aliases: [] }, newId(), at).catch(async (err: unknown) => {
          // The orchestrator may have been quicker (it repairs missing VIPs): that one will do.
          const ep = await deps.store.getEndpoint(net.id, svc.name);
          if (!ep || !isVirtualIp(ep)) throw err;
        });
      }
    } catch (err) {
      await deps.store.deleteService(svc.name).catch(() => undefined);
      for (const vip of vipsOf(deps, svc)) await deps.store.deleteEndpoint(vip.networkId, vip.name).catch(() => undefined);
      throw err;
    }
  }
  deps.log.info('service created', { name: svc.name, replicas: svc.replicas, mode: svc.endpointMode, networks: nets.map((n) => n.name).join(',') });
  deps.orchestrator.expect(svc.id, 'create');
  await deps.view.waitForRevision(outcome.revision);
  deps.orchestrator.kick();
  return serviceDetail(deps, svc);
}

export async function listServices(deps: ManagerDeps, _req: ListServicesRequest): Promise<ListServicesResponse> {
  deps.view.requireLoaded();
  return {
    services: [...deps.view.services.values()].sort((a, b) => a.name.localeCompare(b.name)).map((s) => serviceDetail(deps, s)),
  };
}

const find = async (deps: ManagerDeps, name: string): Promise<Service> => {
  deps.view.requireLoaded();
  const text = name.trim();
  if (text === '') throw notFound('no service named; pass a service name (see "ctmgr service ls")');
  const svc = deps.view.services.get(nameKey(text)) ?? (await deps.store.getService(text));
  if (!svc) throw notFound(`no service named ${text}; list them with "ctmgr service ls"`);
  return svc;
};

export async function inspectService(deps: ManagerDeps, req: InspectServiceRequest): Promise<ServiceDetail> {
  return serviceDetail(deps, await find(deps, req.name));
}

export async function scaleService(deps: ManagerDeps, req: ScaleServiceRequest): Promise<ServiceDetail> {
  const replicas = parseReplicas(req.replicas);
  const svc = await find(deps, req.name);
  const updated = await deps.store.updateService(svc.name, (s) => ({ ...s, replicas, updatedAt: new Date(deps.clock.now()).toISOString() }));
  if (!updated) throw notFound(`service ${svc.name} was removed meanwhile`);
  deps.log.info('service scaled', { name: svc.name, from: svc.replicas, to: replicas });
  deps.orchestrator.expect(svc.id, 'scale');
  await deps.view.waitForRevision(updated.revision);
  deps.orchestrator.kick();
  return serviceDetail(deps, updated.service);
}

export async function removeService(deps: ManagerDeps, req: RemoveServiceRequest): Promise<RemoveServiceResponse> {
  const svc = await find(deps, req.name);
  const removed = await deps.store.deleteService(svc.name);
  if (!removed) throw notFound(`no service named ${svc.name}; list them with "ctmgr service ls"`);
  const tasks = [...deps.view.containers.values()].filter((c) => c.task?.serviceId === removed.id).length;
  deps.log.info('service removed', { name: removed.name, tasks });
  // Its tasks retire (DNS first, then the sandboxes) and its virtual IPs are released by the orchestrator.
  deps.orchestrator.kick();
  return { name: removed.name, tasks };
}
