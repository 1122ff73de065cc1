import {
  addressTaken,
  alreadyExists,
  CtnetError,
  ErrorCode,
  failedPrecondition,
  formatCidr,
  formatIPv4,
  macForIPv4,
  isPooled,
  nameKey,
  networkOnNode,
  pickHostSubnet,
  nextFreeAddress,
  notFound,
  parseIPv4,
  parseStaticAddress,
  planAddresses,
  poolExhausted,
  type AddressPlan,
  type Container,
  type Endpoint,
  type EndpointSpec,
  type Network,
} from '@ctnet/core';
import type { CreateEndpointOutcome, Store } from '@ctnet/store';
import type { ClusterView } from './view.js';
import type { ManagerMetrics } from './metrics.js';

/**
 * Hands out addresses. Each attempt is one etcd transaction that claims `ipam/<net>/<ip>`
 * and writes the endpoint together (see EtcdStore.createEndpoint); allocators contend only
 * when they try the very same address. Within this process a cursor per network and a set
 * of in-flight candidates keep concurrent calls on distinct addresses; against other
 * managers a lost race costs one retry, after a random skip so two managers do not march
 * in lockstep.
 */
export interface Allocator {
  /** With `container`, the container record is written in the same transaction. */
  createEndpoint(net: Network, spec: EndpointSpec, id: string, createdAt: string, container?: Container, attachTo?: Container): Promise<Endpoint>;
}

const MAX_ATTEMPTS = 64;

/** ".../ports/tcp/8080/h1/0.0.0.0" -> "port 0.0.0.0:8080/tcp on node h1" (node * = every node). */
export function describePortKey(key: string): string {
  const [ip, node, port, protocol] = key.split('/').reverse();
  return `port ${ip}:${port}/${protocol} ${node === '*' ? 'on every node' : `on node ${node}`}`;
}

export function createAllocator(store: Store, view: ClusterView, metrics: ManagerMetrics, random = Math.random): Allocator {
  const cursors = new Map<string, number>();
  const pending = new Map<string, Set<number>>();
  const plans = new Map<string, { net: Network; plan: AddressPlan }>();

  // Keyed by network and, for a pooled bridge network, node: each host has its own subnet.
  const planFor = (key: string, net: Network): AddressPlan => {
    const cached = plans.get(key);
    if (cached && cached.net === net) return cached.plan;
    const plan = planAddresses(net);
    plans.set(key, { net, plan });
    return plan;
  };

  /**
   * The network as the endpoint's node has it. A pooled bridge network gets a subnet for a
   * node the first time something of it lands there: cut from the pool, clear of the node's
   * routes, written into the network record (compare-and-swap) before any address is taken.
   */
  const onNode = async (net: Network, node: string): Promise<{ key: string; local: Network }> => {
    const key = net.driver === 'bridge' ? `${net.id}/${nameKey(node)}` : net.id;
    const local = networkOnNode(net, node);
    if (local) return { key, local };
    if (net.node) {
      throw failedPrecondition(`network ${net.name} lives on node ${net.node} only (created with --node); run the container there (--node ${net.node}) or use another network`);
    }
    const routes = view.nodes.get(nameKey(node))?.routes ?? [];
    const updated = await store.updateNetwork(net.id, (n) =>
      n.hostSubnets?.[nameKey(node)] ? n : { ...n, hostSubnets: { ...n.hostSubnets, [nameKey(node)]: formatCidr(pickHostSubnet(n, node, routes)) } },
    );
    const now = updated && networkOnNode(updated, node);
    if (!now) throw notFound(`network ${net.name} no longer exists; create it again or pick another network`);
    return { key, local: now };
  };
  const pendingFor = (id: string): Set<number> => {
    let set = pending.get(id);
    if (!set) pending.set(id, (set = new Set()));
    return set;
  };

  const build = (net: Network, spec: EndpointSpec, id: string, createdAt: string, addr: number): Endpoint => ({
    id,
    networkId: net.id,
    name: spec.name,
    node: spec.node,
    ip: formatIPv4(addr),
    mac: spec.mac ?? macForIPv4(addr),
    aliases: spec.aliases,
    createdAt,
    container: spec.container ?? '',
    ...(spec.origin && { origin: spec.origin }),
  });

  /** A Docker endpoint is named as its container, with its host: that is what its user knows. */
  const ownerOf = (net: Network, name: string): string => {
    const ep = view.endpoints.get(`${net.id}/${nameKey(name)}`);
    return ep?.origin === 'docker' ? `Docker container ${ep.aliases[0] ?? name} on node ${ep.node}` : name;
  };

  const fail = (net: Network, spec: EndpointSpec, outcome: Exclude<CreateEndpointOutcome, { ok: true }>): CtnetError => {
    switch (outcome.reason) {
      case 'container-taken':
        return alreadyExists(
          `a container named ${outcome.existing.name} already exists (on node ${outcome.existing.node}); choose another name or remove it with "ctmgr rm -f ${outcome.existing.name}"`,
        );
      case 'name-taken':
        return alreadyExists(
          `an endpoint named ${spec.name} already exists in network ${net.name} (on node ${outcome.existing.node}, ${outcome.existing.ip}); choose another name or remove it first`,
        );
      case 'container-gone':
        return notFound(`container ${spec.name} was removed meanwhile; nothing was connected`);
      case 'network-gone':
        return notFound(`network ${net.name} no longer exists; create it again or pick another network`);
      case 'network-removing':
        return failedPrecondition(`network ${net.name} is being removed; wait for the removal or pick another network`);
      case 'address-taken':
        return addressTaken(spec.ip ?? '?', net.name, ownerOf(net, outcome.owner));
      case 'port-taken':
        return alreadyExists(`${describePortKey(outcome.port)} is already published by ${outcome.holder}; choose another host port (e.g. -p CONTAINER_PORT picks a free one)`);
      case 'service-name':
        return alreadyExists(
          `a service named ${outcome.service} is on network ${net.name}, and DNS answers its name there; ${spec.name} (or one of its --network-alias names) cannot answer to ${outcome.name} too; choose another name`,
        );
    }
  };

  return {
    async createEndpoint(net, spec, id, createdAt, container, attachTo) {
      const { key, local } = await onNode(net, spec.node);
      const plan = planFor(key, local);
      // Each host of a pooled bridge network has its own subnet: say whose an address must be in.
      const label = isPooled(net) ? `${net.name} on node ${spec.node}` : net.name;
      if (spec.ip !== undefined) {
        const addr = parseStaticAddress(plan, spec.ip, label);
        const outcome = await store.createEndpoint(build(net, spec, id, createdAt, addr), container, attachTo);
        metrics.allocations.inc({ result: outcome.ok ? 'ok' : outcome.reason });
        if (!outcome.ok) throw fail(net, spec, outcome);
        return build(net, spec, id, createdAt, addr);
      }
      const inFlight = pendingFor(net.id);
      let refreshed = false;
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const claims = view.claims(net.id);
        const cursor = cursors.get(key) ?? claims.last?.addr;
        const addr = nextFreeAddress(plan, cursor, (a) => claims.taken.has(a) || inFlight.has(a));
        if (addr === undefined) {
          if (inFlight.size > 0 || refreshed) throw poolExhausted(label, plan);
          // The view may lag behind releases made elsewhere: check etcd once before giving up.
          const fresh = await store.listClaims(net.id);
          claims.taken.clear();
          for (const c of fresh.claims) claims.taken.add(parseIPv4(c.ip));
          refreshed = true;
          continue;
        }
        cursors.set(key, addr);
        inFlight.add(addr);
        let outcome: CreateEndpointOutcome;
        try {
          outcome = await store.createEndpoint(build(net, spec, id, createdAt, addr), container, attachTo);
        } finally {
          inFlight.delete(addr);
        }
        if (outcome.ok) {
          metrics.allocations.inc({ result: 'ok' });
          claims.taken.add(addr);
          return build(net, spec, id, createdAt, addr);
        }
        metrics.allocations.inc({ result: outcome.reason });
        if (outcome.reason !== 'address-taken') throw fail(net, spec, outcome);
        // Lost a race for this address (another manager): remember it and skip ahead a little.
        claims.taken.add(addr);
        cursors.set(key, addr + Math.floor(random() * 16));
      }
      throw new CtnetError(
        ErrorCode.Aborted,
        `could not claim an address in network ${net.name} after ${MAX_ATTEMPTS} attempts (heavy contention); retry`,
      );
    },
  };
}
