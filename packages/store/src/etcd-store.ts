import { ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel';
import { Etcd3, isRecoverableError, type IKeyValue, type IWatchResponse } from 'etcd3';
import { CtnetError, ErrorCode, type Container, type Endpoint, type Network, type Node, type Service } from '@ctnet/core';
import { decodeKey, keys, ROOT, STATE_PREFIX } from './keys.js';
import { compactedError, etcdError } from './etcd-errors.js';
import { createPkiStore, type PkiStore } from './pki-store.js';
import {
  applyGuards,
  containerPortGuards,
  containerPortKeys,
  endpointNameGuards,
  endpointHolderName,
  endpointNameKeys,
  endpointPortKeys,
  mergeGuards,
  prefixEnd,
  serviceGuards,
  serviceKeys,
  type Guards,
} from './claims.js';
import type {
  ChangeBatch,
  Claim,
  ClusterChange,
  ClusterConfig,
  CreateEndpointOutcome,
  CreateServiceOutcome,
  EndpointChange,
  NodeAck,
  NodeLiveness,
  RemoveNetworkOutcome,
  StateSnapshot,
  Store,
  UpdateEndpointOutcome,
  Watch,
} from './store.js';

export interface EtcdStoreOptions {
  readonly endpoints: readonly string[];
  /** Deadline for each unary call, so a lost etcd fails a request instead of hanging it. */
  readonly callTimeoutMs?: number;
  /** For https:// endpoints: the CA to trust and (client-certificate authentication) our certificate and key, PEM. */
  readonly tls?: { readonly caPem: string; readonly certPem?: string; readonly keyPem?: string };
}

const rev = (text: string | undefined | null): number => Number(text ?? 0);
/**
 * Keys per range request. A whole prefix in one response would hit the client's receive limit
 * (RECEIVE_LIMIT) once there are enough records; etcd cannot limit a page by bytes, so a page
 * too large for the limit is asked for again in quarters (records are capped by core's LIMITS,
 * so one record always fits).
 */
export const PAGE_KEYS = 1024;
const RECEIVE_LIMIT = 16 * 1024 * 1024;
const json = (kv: IKeyValue): unknown => JSON.parse(kv.value.toString());

/** The production Store: etcd through the etcd3 client. */
export function createEtcdStore(opts: EtcdStoreOptions): Store {
  const timeout = opts.callTimeoutMs ?? 5000;
  const client = new Etcd3({
    hosts: [...opts.endpoints],
    ...(opts.tls && {
      credentials: {
        rootCertificate: Buffer.from(opts.tls.caPem),
        ...(opts.tls.certPem && opts.tls.keyPem && { certChain: Buffer.from(opts.tls.certPem), privateKey: Buffer.from(opts.tls.keyPem) }),
      },
    }),
    dialTimeout: timeout,
    grpcOptions: { 'grpc.max_receive_message_length': RECEIVE_LIMIT },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
    faultHandling: {
      // The client's default breaker keeps refusing calls for 5 s after etcd comes back;
      // probe again after 1 s so the manager recovers as soon as etcd does.
      host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
    },
  });
  return new EtcdStore(client, opts.endpoints);
}

class EtcdStore implements Store {
  readonly pki: PkiStore;
  constructor(
    private readonly client: Etcd3,
    private readonly endpoints: readonly string[],
  ) {
    this.pki = createPkiStore(client, (doing, fn) => this.io(doing, fn));
  }

  /** Runs one etcd interaction, turning client failures into UNAVAILABLE CtnetErrors. */
  private async io<T>(doing: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw etcdError(err, this.endpoints, doing);
    }
  }

  async initCluster(wanted: ClusterConfig): Promise<ClusterConfig> {
    return this.io('initialising the cluster config', async () => {
      const res = await this.client
        .if(keys.cluster, 'Create', '==', 0)
        .then(this.client.put(keys.cluster).value(JSON.stringify(wanted)))
        .else(this.client.get(keys.cluster))
        .commit();
      if (res.succeeded) return wanted;
      const kv = res.responses[0]?.response_range?.kvs[0];
      return kv ? (json(kv) as ClusterConfig) : wanted;
    });
  }

  async listNetworks(): Promise<{ networks: Network[]; revision: number }> {
    return this.io('listing networks', async () => {
      const res = await this.rangeAll(keys.networksPrefix);
      return { networks: res.kvs.map((kv) => json(kv) as Network), revision: res.revision };
    });
  }

  async createNetwork(net: Network, listRevision: number): Promise<boolean> {
    return this.io(`creating network ${net.name}`, async () => {
      // The guard's mod revision moves on every network create/remove: if it moved after our
      // list, someone else changed the table and our overlap/name/VNI checks are stale.
      const res = await this.client
        .if(keys.networksGuard, 'Mod', '<', listRevision + 1)
        .and(keys.network(net.id), 'Create', '==', 0)
        .then(
          this.client.put(keys.networksGuard).value(net.id),
          this.client.put(keys.network(net.id)).value(JSON.stringify(net)),
        )
        .else(this.client.get(keys.network(net.id)))
        .commit();
      if (res.succeeded) return true;
      // A retried commit that had in fact gone through finds its own record: that is success.
      const kv = res.responses[0]?.response_range?.kvs[0];
      return kv !== undefined && (json(kv) as Network).id === net.id && (json(kv) as Network).name === net.name;
    });
  }

  async removeNetwork(net: Network): Promise<RemoveNetworkOutcome> {
    const lock = keys.networkLock(net.id);
    return this.io(`removing network ${net.name}`, async () => {
      // Phase 1: take the lock (ours alone: a unique value). From here on every endpoint
      // creation for this network fails its transaction, so the emptiness check below cannot
      // be overtaken. Whatever happens next, only our own lock is released.
      const mine = `removing-${Date.now()}-${Math.random().toString(36).slice(2)}`;
      let taken = await this.client.if(lock, 'Create', '==', 0).then(this.client.put(lock).value(mine)).else(this.client.get(lock)).commit();
      if (!taken.succeeded) {
        // A lock older than a minute was left by a remover that died: take it over.
        const old = taken.responses[0]?.response_range?.kvs[0]?.value.toString() ?? '';
        const since = Number(old.split('-')[1]);
        if (!(Date.now() - since > 60_000)) throw new CtnetError(ErrorCode.Aborted, `network ${net.name} is already being removed; retry in a moment`);
        taken = await this.client.if(lock, 'Value', '==', old).then(this.client.put(lock).value(mine)).commit();
        if (!taken.succeeded) throw new CtnetError(ErrorCode.Aborted, `network ${net.name} is already being removed; retry in a moment`);
      }
      const unlock = () => this.client.if(lock, 'Value', '==', mine).then(this.client.delete().key(lock)).commit();
      try {
        const eps = await this.rangeAll(keys.networkEndpointsPrefix(net.id));
        if (eps.kvs.length > 0) {
          await unlock();
          return { ok: false, endpoints: eps.kvs.map((kv) => json(kv) as Endpoint) };
        }
        // Phase 2: network, its claims (reservations) and the lock go together.
        await this.client
          .if(keys.network(net.id), 'Version', '>', 0)
          .and(lock, 'Value', '==', mine)
          .then(
            this.client.delete().key(keys.network(net.id)),
            this.client.delete().prefix(keys.claimsPrefix(net.id)),
            this.client.delete().prefix(keys.namesPrefix(net.id)),
            this.client.delete().key(lock),
            this.client.put(keys.networksGuard).value(net.id),
          )
          .else(this.client.delete().key(lock))
          .commit();
        return { ok: true };
      } catch (err) {
        await unlock().catch(() => undefined); // best effort; a lock left behind would block the network
        throw err;
      }
    });
  }

  async createEndpoint(ep: Endpoint, container?: Container, attachTo?: Container): Promise<CreateEndpointOutcome> {
    const epKey = keys.endpoint(ep.networkId, ep.name);
    const ctKey = container ? keys.container(container.name) : undefined;
    const claimKey = keys.claim(ep.networkId, ep.ip);
    const netKey = keys.network(ep.networkId);
    const lockKey = keys.networkLock(ep.networkId);
    return this.io(`creating endpoint ${ep.name}`, async () => {
      // One transaction claims the address and writes the endpoint: both or neither.
      let txn = this.client
        .if(netKey, 'Version', '>', 0)
        .and(lockKey, 'Version', '==', 0)
        .and(epKey, 'Create', '==', 0)
        .and(claimKey, 'Create', '==', 0);
      // Its names must not be a service's, and the container's host ports must be free.
      const guards = mergeGuards(endpointNameGuards(ep), container ? containerPortGuards(container) : { absent: [], empty: [], puts: [] });
      txn = applyGuards(txn, guards);
      const puts = [
        this.client.put(claimKey).value(ep.name),
        this.client.put(epKey).value(JSON.stringify(ep)),
        ...guards.puts.map(([k, v]) => this.client.put(k).value(v)),
      ];
      if (container && ctKey) {
        txn = txn.and(ctKey, 'Create', '==', 0);
        puts.push(this.client.put(ctKey).value(JSON.stringify(container)));
      }
      const attachKey = attachTo ? keys.container(attachTo.name) : undefined;
      if (attachTo && attachKey) {
        const same = JSON.stringify(attachTo);
        txn = txn.and(attachKey, 'Value', '==', same);
        puts.push(this.client.put(attachKey).value(same));
      }
      const res = await txn.then(...puts).commit();
      if (res.succeeded) return { ok: true, revision: rev(res.header.revision) };
      if (attachKey && (await this.client.get(attachKey).string()) !== JSON.stringify(attachTo)) return { ok: false, reason: 'container-gone' };
      if (ctKey) {
        const ct = (await this.client.get(ctKey).exec()).kvs[0];
        if (ct) {
          const found = json(ct) as Container;
          if (found.id === container!.id) return { ok: true, revision: rev(ct.mod_revision) };
          return { ok: false, reason: 'container-taken', existing: found };
        }
      }
      // Failures are rare: find out why with a read rather than carrying reads in every txn.
      const [net, lock, existing, claim] = await Promise.all(
        [netKey, lockKey, epKey, claimKey].map(async (k) => (await this.client.get(k).exec()).kvs[0]),
      );
      if (!net) return { ok: false, reason: 'network-gone' };
      if (lock) return { ok: false, reason: 'network-removing' };
      if (existing) {
        const found = json(existing) as Endpoint;
        // Our own earlier attempt (a retry after a lost reply) already committed.
        if (found.id === ep.id) return { ok: true, revision: rev(existing.mod_revision) };
        return { ok: false, reason: 'name-taken', existing: found };
      }
      const held = await this.violated(guards);
      if (held?.key.includes('/ports/')) return { ok: false, reason: 'port-taken', port: held.key, holder: held.holder };
      if (held) return { ok: false, reason: 'service-name', name: held.key.split('/').at(-1) ?? '', service: held.holder };
      // The claim may have been released again in between: report it taken all the same,
      // the allocator simply moves on to the next address.
      return { ok: false, reason: 'address-taken', owner: claim ? claim.value.toString() : 'another endpoint' };
    });
  }

  async deleteEndpoint(networkId: string, name: string): Promise<Endpoint | undefined> {
    const epKey = keys.endpoint(networkId, name);
    return this.io(`deleting endpoint ${name}`, async () => {
      for (;;) {
        const res = await this.client.get(epKey).exec();
        const kv = res.kvs[0];
        if (!kv) return undefined;
        const ep = json(kv) as Endpoint;
        const claimKey = keys.claim(networkId, ep.ip);
        // Release the address only if it is still ours, and only together with the endpoint.
        const txn = await this.client
          .if(epKey, 'Mod', '==', rev(kv.mod_revision))
          .and(claimKey, 'Value', '==', ep.name)
          .then(
            this.client.delete().key(epKey),
            this.client.delete().key(claimKey),
            ...[...endpointNameKeys(ep), ...endpointPortKeys(ep)].map((k) => this.client.delete().key(k)),
          )
          .else(this.client.get(claimKey))
          .commit();
        if (txn.succeeded) return ep;
        const claim = txn.responses[0]?.response_range?.kvs[0];
        if (!claim || claim.value.toString() !== ep.name) {
          // The claim is already gone or belongs elsewhere (should not happen): drop the endpoint alone.
          const only = await this.client
            .if(epKey, 'Mod', '==', rev(kv.mod_revision))
            .then(this.client.delete().key(epKey), ...[...endpointNameKeys(ep), ...endpointPortKeys(ep)].map((k) => this.client.delete().key(k)))
            .commit();
          if (only.succeeded) return ep;
        }
      }
    });
  }

  async updateEndpoint(networkId: string, name: string, change: EndpointChange): Promise<UpdateEndpointOutcome> {
    const epKey = keys.endpoint(networkId, name);
    return this.io(`updating endpoint ${name}`, async () => {
      for (;;) {
        const kv = (await this.client.get(epKey).exec()).kvs[0];
        if (!kv) return undefined;
        const before = json(kv) as Endpoint;
        const after: Endpoint = {
          ...before,
          ...(change.aliases && { aliases: [...change.aliases] }),
          ...(change.ports && { ports: change.ports.map((p) => ({ ...p })) }),
        };
        if (after.ports?.length === 0) delete (after as { ports?: unknown }).ports;
        // Names: the old claims go and the new ones come. Ports: only the new ones are guarded
        // (a port it keeps is its own already). All with the endpoint, or nothing.
        const oldPorts = new Set(endpointPortKeys(before));
        const newPorts = (after.ports ?? []).filter((p) => !oldPorts.has(keys.port(p.protocol, p.hostPort, after.node, p.hostIp)));
        const guards = mergeGuards(endpointNameGuards(after), containerPortGuards({ name: endpointHolderName(after), node: after.node, ports: newPorts }));
        // etcd refuses a key twice in one transaction: a key kept is only put.
        const kept = new Set([...guards.puts.map(([k]) => k), ...endpointPortKeys(after)]);
        const drop = [...endpointNameKeys(before), ...oldPorts].filter((k) => !kept.has(k));
        const txn = await applyGuards(this.client.if(epKey, 'Mod', '==', rev(kv.mod_revision)), guards)
          .then(
            ...drop.map((k) => this.client.delete().key(k)),
            this.client.put(epKey).value(JSON.stringify(after)),
            ...guards.puts.map(([k, v]) => this.client.put(k).value(v)),
          )
          .else(this.client.get(epKey))
          .commit();
        if (txn.succeeded) return after;
        const now = txn.responses[0]?.response_range?.kvs[0];
        if (now && now.mod_revision === kv.mod_revision) {
          // The endpoint did not change: a guard failed. Name the holder.
          for (const k of guards.absent) {
            const held = (await this.client.get(k).exec()).kvs[0];
            if (held) return k.includes('/ports/') ? { portTaken: k, holder: held.value.toString() } : { clash: k.split('/').pop() ?? k };
          }
          for (const prefix of guards.empty) {
            const held = (await this.client.getAll().prefix(prefix).limit(1).exec()).kvs[0];
            if (held) return { portTaken: held.key.toString(), holder: held.value.toString() };
          }
        }
      }
    });
  }

  async createContainer(container: Container): Promise<CreateEndpointOutcome> {
    const key = keys.container(container.name);
    return this.io(`creating container ${container.name}`, async () => {
      const res = await this.client
        .if(key, 'Create', '==', 0)
        .then(this.client.put(key).value(JSON.stringify(container)))
        .else(this.client.get(key))
        .commit();
      if (res.succeeded) return { ok: true, revision: rev(res.header.revision) };
      const kv = res.responses[0]?.response_range?.kvs[0];
      const found = kv ? (json(kv) as Container) : container;
      if (found.id === container.id) return { ok: true, revision: rev(kv?.mod_revision) };
      return { ok: false, reason: 'container-taken', existing: found };
    });
  }

  async getContainer(name: string): Promise<Container | undefined> {
    return this.io(`reading container ${name}`, async () => {
      const value = await this.client.get(keys.container(name)).string();
      return value === null ? undefined : (JSON.parse(value) as Container);
    });
  }

  async listContainers(): Promise<Container[]> {
    return this.io('listing containers', async () => {
      const res = await this.rangeAll(keys.containersPrefix);
      return res.kvs.map((kv) => json(kv) as Container);
    });
  }

  async deleteContainer(name: string): Promise<{ container: Container; endpoints: Endpoint[] } | undefined> {
    const ctKey = keys.container(name);
    return this.io(`removing container ${name}`, async () => {
      for (let attempt = 0; attempt < 16; attempt++) {
        const kv = (await this.client.get(ctKey).exec()).kvs[0];
        if (!kv) return undefined;
        const container = json(kv) as Container;
        const mine = (await this.rangeAll(keys.endpointsPrefix)).kvs.filter((e) => (json(e) as Endpoint).container === container.id);
        const endpoints = mine.map((e) => json(e) as Endpoint);
        // Container, endpoints and their claims go in one transaction; any concurrent change
        // to one of them makes it fail and we look again.
        let txn = this.client.if(ctKey, 'Mod', '==', rev(kv.mod_revision));
        for (const e of mine) txn = txn.and(e.key.toString(), 'Mod', '==', rev(e.mod_revision));
        const ops = [this.client.delete().key(ctKey), ...containerPortKeys(container).map((k) => this.client.delete().key(k))];
        for (const e of endpoints) {
          ops.push(this.client.delete().key(keys.endpoint(e.networkId, e.name)));
          ops.push(this.client.delete().key(keys.claim(e.networkId, e.ip)));
          for (const k of endpointNameKeys(e)) ops.push(this.client.delete().key(k));
        }
        const res = await txn.then(...ops).commit();
        if (res.succeeded) return { container, endpoints };
      }
      throw etcdError(new Error('container kept changing'), this.endpoints, `removing container ${name}`);
    });
  }

  async getEndpoint(networkId: string, name: string): Promise<Endpoint | undefined> {
    return this.io(`reading endpoint ${name}`, async () => {
      const value = await this.client.get(keys.endpoint(networkId, name)).string();
      return value === null ? undefined : (JSON.parse(value) as Endpoint);
    });
  }

  async listEndpoints(networkId?: string): Promise<Endpoint[]> {
    const prefix = networkId === undefined ? keys.endpointsPrefix : keys.networkEndpointsPrefix(networkId);
    return this.io('listing endpoints', async () => {
      const res = await this.rangeAll(prefix);
      return res.kvs.map((kv) => json(kv) as Endpoint);
    });
  }

  async listClaims(networkId: string): Promise<{ claims: Claim[]; revision: number }> {
    return this.io('listing address claims', async () => {
      const prefix = keys.claimsPrefix(networkId);
      const res = await this.rangeAll(prefix);
      const claims = res.kvs.map((kv) => ({
        ip: kv.key.toString().slice(prefix.length),
        owner: kv.value.toString(),
        createRevision: rev(kv.create_revision),
      }));
      return { claims, revision: res.revision };
    });
  }

  async putNode(node: Node): Promise<number> {
    return this.io(`registering node ${node.name}`, async () => {
      const res = await this.client.put(keys.node(node.name)).value(JSON.stringify(node)).exec();
      return rev(res.header.revision);
    });
  }

  async getNode(name: string): Promise<Node | undefined> {
    return this.io(`reading node ${name}`, async () => {
      const value = await this.client.get(keys.node(name)).string();
      return value === null ? undefined : (JSON.parse(value) as Node);
    });
  }

  async listNodes(): Promise<Node[]> {
    return this.io('listing nodes', async () => {
      const res = await this.rangeAll(keys.nodesPrefix);
      return res.kvs.map((kv) => json(kv) as Node);
    });
  }

  async deleteNode(name: string): Promise<boolean> {
    return this.io(`removing node ${name}`, async () => {
      const res = await this.client
        .if(keys.node(name), 'Version', '>', 0)
        // Its certificates go with it (a removed node needs a join token to come back), and
        // so does its liveness: a forced removal of a ready node leaves no "ready" behind.
        .then(
          this.client.delete().key(keys.node(name)),
          this.client.delete().key(keys.ack(name)),
          this.client.delete().key(keys.pkiIssued('node', name)),
          this.client.delete().key(keys.alive(name)),
        )
        .commit();
      return res.succeeded;
    });
  }

  async keepNodeAlive(name: string, ttlSeconds: number): Promise<NodeLiveness> {
    return this.io(`marking node ${name} ready`, async () => {
      const lease = this.client.lease(ttlSeconds, { autoKeepAlive: true });
      lease.on('lost', () => undefined); // replaced by onLost; keeps an unhandled 'lost' from crashing
      try {
        await lease.put(keys.alive(name)).value(String(Date.now())).exec();
      } catch (err) {
        lease.release(); // or its keepalive loop would outlive this failed attempt
        throw err;
      }
      return {
        release: () => lease.release(),
        onLost: (handler) => {
          lease.removeAllListeners('lost');
          lease.on('lost', handler);
        },
      };
    });
  }

  async listAlive(): Promise<Set<string>> {
    return this.io('listing ready nodes', async () => {
      const res = await this.rangeAll(keys.alivePrefix);
      return new Set(res.kvs.map((kv) => kv.key.toString().slice(keys.alivePrefix.length)));
    });
  }

  async putAck(node: string, ack: NodeAck): Promise<void> {
    await this.io(`recording the ack of node ${node}`, () => this.client.put(keys.ack(node)).value(JSON.stringify(ack)).exec());
  }

  async listAcks(): Promise<Map<string, NodeAck>> {
    return this.io('listing acks', async () => {
      const res = await this.rangeAll(keys.acksPrefix);
      return new Map(res.kvs.map((kv) => [kv.key.toString().slice(keys.acksPrefix.length), json(kv) as NodeAck]));
    });
  }

  async createService(service: Service): Promise<CreateServiceOutcome> {
    const key = keys.service(service.name);
    return this.io(`creating service ${service.name}`, async () => {
      const guards = serviceGuards(service);
      const res = await applyGuards(this.client.if(key, 'Create', '==', 0), guards)
        .then(this.client.put(key).value(JSON.stringify(service)), ...guards.puts.map(([k, v]) => this.client.put(k).value(v)))
        .else(this.client.get(key))
        .commit();
      if (res.succeeded) return { ok: true, revision: rev(res.header.revision) };
      const kv = res.responses[0]?.response_range?.kvs[0];
      if (kv) {
        const found = json(kv) as Service;
        if (found.id === service.id) return { ok: true, revision: rev(kv.mod_revision) }; // our own retried commit
        return { ok: false, reason: 'service-taken', existing: found };
      }
      const held = await this.violated(guards);
      if (held?.key.includes('/ports/')) return { ok: false, reason: 'port-taken', port: held.key, holder: held.holder };
      // names/<net>/<name>[/<endpoint>]: the network is the fourth part from the root
      const network = held?.key.split('/')[4] ?? '';
      return { ok: false, reason: 'name-taken', network, holder: held?.holder ?? 'another endpoint' };
    });
  }

  async getService(name: string): Promise<Service | undefined> {
    return this.io(`reading service ${name}`, async () => {
      const value = await this.client.get(keys.service(name)).string();
      return value === null ? undefined : (JSON.parse(value) as Service);
    });
  }

  async listServices(): Promise<Service[]> {
    return this.io('listing services', async () => {
      const res = await this.rangeAll(keys.servicesPrefix);
      return res.kvs.map((kv) => json(kv) as Service);
    });
  }

  async updateService(name: string, change: (s: Service) => Service): Promise<{ service: Service; revision: number } | undefined> {
    let service: Service | undefined;
    const revision = await this.rewrite(keys.service(name), `service ${name}`, (before: Service) => (service = change(before)));
    return revision === undefined || !service ? undefined : { service, revision };
  }

  async deleteService(name: string): Promise<Service | undefined> {
    const key = keys.service(name);
    return this.io(`removing service ${name}`, async () => {
      for (let attempt = 0; attempt < 16; attempt++) {
        const kv = (await this.client.get(key).exec()).kvs[0];
        if (!kv) return undefined;
        const svc = json(kv) as Service;
        // The record, its ingress port claims and its name reservations go together.
        const res = await this.client
          .if(key, 'Mod', '==', rev(kv.mod_revision))
          .then(this.client.delete().key(key), ...serviceKeys(svc).map((k) => this.client.delete().key(k)))
          .commit();
        if (res.succeeded) return svc;
      }
      throw new CtnetError(ErrorCode.Aborted, `service ${name} kept changing while being removed; retry`);
    });
  }

  /** After a failed guarded transaction: the first guard that does not hold, and its holder. */
  private async violated(g: Guards): Promise<{ key: string; holder: string } | undefined> {
    for (const key of g.absent) {
      const kv = (await this.client.get(key).exec()).kvs[0];
      if (kv) return { key, holder: kv.value.toString() };
    }
    for (const prefix of g.empty) {
      const kv = (await this.client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix), limit: 1 })).kvs[0];
      if (kv) return { key: kv.key.toString(), holder: kv.value.toString() };
    }
    return undefined;
  }

  /**
   * Every key under `prefix`, read in pages of PAGE_KEYS at one revision (the first page's),
   * so the result is one consistent cut however large the prefix is.
   */
  private async rangeAll(prefix: string): Promise<{ kvs: IKeyValue[]; revision: number }> {
    const end = prefixEnd(prefix);
    const kvs: IKeyValue[] = [];
    let from = Buffer.from(prefix);
    let revision: string | undefined;
    let limit = PAGE_KEYS;
    for (;;) {
      let res;
      try {
        res = await this.client.kv.range({ key: from, range_end: end, limit, ...(revision && { revision }) });
      } catch (err) {
        if (limit > 1 && /larger than max|RESOURCE_EXHAUSTED/i.test(String(err))) {
          limit = Math.max(1, limit >> 2);
          continue;
        }
        throw err;
      }
      revision ??= res.header.revision;
      kvs.push(...res.kvs);
      if (!res.more || res.kvs.length === 0) return { kvs, revision: rev(revision) };
      // the next page starts just after the last key of this one
      from = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
    }
  }

  async updateNetwork(id: string, change: (n: Network) => Network | undefined): Promise<Network | undefined> {
    let after: Network | undefined;
    const revision = await this.rewrite(keys.network(id), `network ${id}`, (before: Network) => (after = change(before)));
    return revision === undefined ? undefined : after;
  }

  async updateNode(name: string, change: (n: Node) => Node | undefined): Promise<number | undefined> {
    return this.rewrite(keys.node(name), `node ${name}`, change);
  }

  async updateContainer(name: string, id: string, change: (c: Container) => Container): Promise<number | undefined> {
    return this.rewrite(keys.container(name), `container ${name}`, (before: Container) => (before.id === id ? change(before) : undefined));
  }

  /**
   * Read-modify-write of one JSON record, compare-and-swapped on its mod revision and retried
   * when someone else wrote in between. `change` returns undefined to leave it alone. Returns
   * the revision of the write (the record's own when nothing changed), or undefined.
   */
  private async rewrite<T>(key: string, what: string, change: (before: T) => T | undefined): Promise<number | undefined> {
    return this.io(`updating ${what}`, async () => {
      for (let attempt = 0; attempt < 16; attempt++) {
        const kv = (await this.client.get(key).exec()).kvs[0];
        if (!kv) return undefined;
        const after = change(json(kv) as T);
        if (after === undefined) return undefined;
        const text = JSON.stringify(after);
        if (text === kv.value.toString()) return rev(kv.mod_revision);
        const put = await this.client.if(key, 'Mod', '==', rev(kv.mod_revision)).then(this.client.put(key).value(text)).commit();
        if (put.succeeded) return rev(put.header.revision);
      }
      throw new CtnetError(ErrorCode.Aborted, `${what} kept changing while being updated; retry`);
    });
  }

  async campaign(value: string, onElected: () => void, onError: (err: unknown) => void): Promise<{ resign(): Promise<void> }> {
    // A short TTL: a dead leader's role passes on within seconds.
    const campaign = this.client.election(keys.leader, 5).campaign(value);
    campaign.on('elected', onElected);
    campaign.on('error', (err) => onError(etcdError(err, this.endpoints, 'campaigning for the orchestrator role')));
    return { resign: () => campaign.resign().catch(() => undefined) };
  }

  async snapshot(): Promise<StateSnapshot> {
    return this.io('reading the desired state', async () => {
      // One range read over the state prefix: a consistent cut at one revision.
      const res = await this.rangeAll(STATE_PREFIX);
      const networks: Network[] = [];
      const endpoints: Endpoint[] = [];
      const nodes: Node[] = [];
      const containers: Container[] = [];
      for (const kv of res.kvs) {
        const key = decodeKey(kv.key.toString());
        if (key.kind === 'network') networks.push(json(kv) as Network);
        else if (key.kind === 'endpoint') endpoints.push(json(kv) as Endpoint);
        else if (key.kind === 'node') nodes.push(json(kv) as Node);
        else if (key.kind === 'container') containers.push(json(kv) as Container);
      }
      return { revision: res.revision, networks, endpoints, nodes, containers };
    });
  }

  async loadAll(): Promise<ChangeBatch> {
    return this.io('loading the cluster state', async () => {
      const res = await this.rangeAll(ROOT);
      const changes = res.kvs.map((kv) => decodeChange(kv, false)).filter((c): c is ClusterChange => c !== undefined);
      return { revision: res.revision, changes };
    });
  }

  async watch(
    scope: 'state' | 'status' | 'all',
    fromRevision: number,
    onBatch: (batch: ChangeBatch) => void,
    onError: (err: unknown) => void,
  ): Promise<Watch> {
    const watcher = this.client
      .watch()
      .prefix(scope === 'state' ? STATE_PREFIX : scope === 'status' ? `${ROOT}status/` : ROOT)
      .startRevision(String(fromRevision + 1))
      .watcher();
    let failed = false;
    // etcd cancels a watch on a compacted revision with an empty reason, and the client keeps
    // only the reason: ask etcd directly whether our start revision is still readable.
    const classify = async (err: unknown): Promise<unknown> => {
      const text = err instanceof Error ? err.message : String(err);
      if (/compacted/i.test(text)) return compactedError(fromRevision, text);
      const probe = await this.client.kv
        .range({ key: Buffer.from(keys.cluster), revision: String(fromRevision + 1) })
        .then(() => undefined, (e: unknown) => e);
      if (probe && /compacted/i.test(String(probe))) return compactedError(fromRevision, String(probe));
      return etcdError(err, this.endpoints, 'watching');
    };
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      void classify(err).then(onError);
    };
    watcher.on('data', (res: IWatchResponse) => {
      for (const batch of toBatches(res)) onBatch(batch);
    });
    // etcd may refuse the watch (compacted start) before or after confirming it, possibly in
    // the same tick: one error listener from the start routes each error to the right place.
    let connected = false;
    let settle: (early: unknown) => void = () => undefined;
    const early = new Promise<unknown>((resolve) => (settle = resolve));
    const timer = setTimeout(() => settle(new Error('watch not established within 10 s')), 10_000);
    watcher.on('connected', () => {
      connected = true;
      clearTimeout(timer);
      settle(undefined);
    });
    watcher.on('error', (err) => {
      if (connected) return fail(err);
      clearTimeout(timer);
      settle(err);
    });
    const earlyError = await early;
    if (earlyError !== undefined) {
      failed = true;
      watcher.removeAllListeners();
      // a watch that never connected may still connect later: cancel it (one etcd refused needs no cancel)
      if (!connected && String(earlyError).includes('not established')) void watcher.cancel().catch(() => undefined);
      throw await classify(earlyError);
    }
    return {
      // A watch etcd already cancelled must not be cancelled again: the client would send a
      // cancel for an unknown id and wait for an answer that never comes.
      cancel: async () => {
        if (failed) return void watcher.removeAllListeners();
        failed = true;
        await Promise.race([watcher.cancel(), new Promise((r) => setTimeout(r, 2000).unref())]);
        watcher.removeAllListeners();
      },
    };
  }

  async currentRevision(): Promise<number> {
    return this.io('reading the revision', async () => {
      const res = await this.client.get(keys.cluster).exec();
      return rev(res.header.revision);
    });
  }

  close(): void {
    this.client.close();
  }
}

/** Groups a watch response's events by revision (a transaction's events share one). */
function toBatches(res: IWatchResponse): ChangeBatch[] {
  const batches: ChangeBatch[] = [];
  let current: { revision: number; changes: ClusterChange[] } | undefined;
  for (const event of res.events) {
    const revision = rev(event.kv.mod_revision);
    const change = decodeChange(event.kv, event.type === 'Delete');
    if (!change) continue;
    if (!current || current.revision !== revision) {
      current = { revision, changes: [] };
      batches.push(current);
    }
    current.changes.push(change);
  }
  return batches;
}

export function decodeChange(kv: IKeyValue, deleted: boolean): ClusterChange | undefined {
  const key = decodeKey(kv.key.toString());
  // Claim and alive values are plain strings; only records are JSON.
  const value = deleted || key.kind === 'claim' || key.kind === 'alive' || key.kind === 'other' ? undefined : json(kv);
  switch (key.kind) {
    case 'network':
      return { kind: 'network', id: key.id, ...(value !== undefined && { value: value as Network }) };
    case 'endpoint':
      return { kind: 'endpoint', id: key.id, ...(value !== undefined && { value: value as Endpoint }) };
    case 'node':
      return { kind: 'node', id: key.id, ...(value !== undefined && { value: value as Node }) };
    case 'container':
      return { kind: 'container', id: key.id, ...(value !== undefined && { value: value as Container }) };
    case 'service':
      return { kind: 'service', id: key.id, ...(value !== undefined && { value: value as Service }) };
    case 'claim':
      return {
        kind: 'claim',
        networkId: key.networkId,
        ip: key.ip,
        createRevision: rev(kv.create_revision),
        ...(!deleted && { owner: kv.value.toString() }),
      };
    case 'alive':
      return { kind: 'alive', node: key.node, up: !deleted };
    case 'ack':
      return { kind: 'ack', node: key.node, ...(value !== undefined && { value: value as NodeAck }) };
    default:
      return undefined;
  }
}
