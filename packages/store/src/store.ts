import type { PkiStore } from './pki-store.js';
import type { Container, Endpoint, Network, Node, PortMapping, Service } from '@ctnet/core';

/**
 * The store contract: the manager's only way to etcd. Every method that writes does so in
 * one etcd transaction, so a failure (etcd lost mid-request included) leaves nothing
 * half-written. Errors are CtnetErrors: UNAVAILABLE when etcd cannot be reached.
 */
export interface ClusterConfig {
  readonly vxlanPort: number;
}

export interface StateSnapshot {
  readonly revision: number;
  readonly networks: readonly Network[];
  readonly endpoints: readonly Endpoint[];
  readonly nodes: readonly Node[];
  readonly containers: readonly Container[];
}

/** One change to the cluster, decoded. `value` is absent on deletes. */
export type ClusterChange =
  | { kind: 'network'; id: string; value?: Network }
  | { kind: 'endpoint'; id: string; value?: Endpoint }
  | { kind: 'node'; id: string; value?: Node }
  | { kind: 'container'; id: string; value?: Container }
  | { kind: 'service'; id: string; value?: Service }
  | { kind: 'claim'; networkId: string; ip: string; owner?: string; createRevision: number }
  | { kind: 'alive'; node: string; up: boolean }
  | { kind: 'ack'; node: string; value?: NodeAck };

export interface ChangeBatch {
  readonly revision: number;
  readonly changes: readonly ClusterChange[];
}

export interface NodeAck {
  readonly revision: number;
  readonly at: string;
}

export interface Claim {
  readonly ip: string;
  readonly owner: string;
  readonly createRevision: number;
}

export type CreateEndpointOutcome =
  | { ok: true; revision: number }
  | { ok: false; reason: 'name-taken'; existing: Endpoint }
  | { ok: false; reason: 'container-taken'; existing: Container }
  | { ok: false; reason: 'address-taken'; owner: string }
  | { ok: false; reason: 'network-gone' }
  | { ok: false; reason: 'container-gone' }
  | { ok: false; reason: 'network-removing' }
  /** A published host port is held (by `holder`: "container web on node h1", "service web (ingress…)"). */
  | { ok: false; reason: 'port-taken'; port: string; holder: string }
  /** One of the endpoint's names is a service's on its network. */
  | { ok: false; reason: 'service-name'; name: string; service: string };

export type CreateServiceOutcome =
  | { ok: true; revision: number }
  | { ok: false; reason: 'service-taken'; existing: Service }
  | { ok: false; reason: 'port-taken'; port: string; holder: string }
  /** A container on one of its networks answers to the service's name. */
  | { ok: false; reason: 'name-taken'; network: string; holder: string };

export interface EndpointChange {
  readonly aliases?: readonly string[];
  readonly ports?: readonly PortMapping[];
}

export type UpdateEndpointOutcome = Endpoint | { clash: string } | { portTaken: string; holder: string } | undefined;

export type RemoveNetworkOutcome = { ok: true } | { ok: false; endpoints: readonly Endpoint[] };

export interface NodeLiveness {
  /** Stops keeping the lease alive; the node turns down when the TTL runs out. */
  release(): void;
  /** Called if the lease is lost while still held (etcd unreachable for longer than the TTL). */
  onLost(handler: (err: unknown) => void): void;
}

export interface Watch {
  cancel(): Promise<void>;
}

export interface Store {
  /** The cluster's CA, join secret and issued-certificate allow-list. */
  readonly pki: PkiStore;
  initCluster(wanted: ClusterConfig): Promise<ClusterConfig>;

  listNetworks(): Promise<{ networks: Network[]; revision: number }>;
  /** Creates the network unless the network table changed after `listRevision` (then false: re-list and retry). */
  createNetwork(net: Network, listRevision: number): Promise<boolean>;
  removeNetwork(net: Network): Promise<RemoveNetworkOutcome>;
  /** Read-modify-write of a network record (retried on a concurrent change); undefined if it is gone or `change` returned undefined. */
  updateNetwork(id: string, change: (n: Network) => Network | undefined): Promise<Network | undefined>;

  /**
   * With `container`, also writes the container record (its name must be free) in the same
   * transaction. With `attachTo` (network connect), requires that container to still exist and
   * rewrites it, so a removal racing the connect retries and sees the new endpoint.
   */
  createEndpoint(ep: Endpoint, container?: Container, attachTo?: Container): Promise<CreateEndpointOutcome>;
  /** A container without an endpoint (network modes none, host, container:X); its name must be free. */
  createContainer(container: Container): Promise<CreateEndpointOutcome>;
  getContainer(name: string): Promise<Container | undefined>;
  listContainers(): Promise<Container[]>;
  /** Deletes the container with all its endpoints and their address claims, together. */
  deleteContainer(name: string): Promise<{ container: Container; endpoints: Endpoint[] } | undefined>;
  /** Deletes the endpoint and releases its address together; undefined if it did not exist. */
  deleteEndpoint(networkId: string, name: string): Promise<Endpoint | undefined>;
  /**
   * Replaces an endpoint's aliases and/or published ports in one transaction with their
   * claims: undefined when there is no such endpoint; { clash } naming a service that already
   * answers to an alias; { portTaken, holder } for a host port held by someone else.
   */
  updateEndpoint(networkId: string, name: string, change: EndpointChange): Promise<UpdateEndpointOutcome>;
  getEndpoint(networkId: string, name: string): Promise<Endpoint | undefined>;
  listEndpoints(networkId?: string): Promise<Endpoint[]>;
  listClaims(networkId: string): Promise<{ claims: Claim[]; revision: number }>;

  /** Returns the revision of the write. */
  putNode(node: Node): Promise<number>;
  getNode(name: string): Promise<Node | undefined>;
  /** Read-modify-write of a node record; undefined if it is gone or `change` returned undefined. */
  updateNode(name: string, change: (n: Node) => Node | undefined): Promise<number | undefined>;
  listNodes(): Promise<Node[]>;
  deleteNode(name: string): Promise<boolean>;
  keepNodeAlive(name: string, ttlSeconds: number): Promise<NodeLiveness>;
  listAlive(): Promise<Set<string>>;
  putAck(node: string, ack: NodeAck): Promise<void>;
  listAcks(): Promise<Map<string, NodeAck>>;

  /**
   * Creates the service, with its ingress port claims and its name reserved on its networks,
   * unless the name, a port or the name on a network is taken (the outcome says which).
   */
  createService(service: Service): Promise<CreateServiceOutcome>;
  getService(name: string): Promise<Service | undefined>;
  listServices(): Promise<Service[]>;
  /** Read-modify-write (retried on a concurrent change); undefined if there is no such service. */
  updateService(name: string, change: (s: Service) => Service): Promise<{ service: Service; revision: number } | undefined>;
  /** Deletes the service with its port claims and name reservations, together. */
  deleteService(name: string): Promise<Service | undefined>;
  /**
   * Rewrites a container's status or its task's desired state, only if it is still the
   * container with this id (a name can be reused). Returns the revision of the write, the
   * current one when nothing changed, or undefined when the container is gone.
   */
  updateContainer(name: string, id: string, change: (c: Container) => Container): Promise<number | undefined>;
  /**
   * Campaigns for a cluster-wide role (the orchestrator): `onElected` runs while this
   * manager holds it; leadership is lost only with the manager's lease.
   */
  campaign(value: string, onElected: () => void, onError: (err: unknown) => void): Promise<{ resign(): Promise<void> }>;

  snapshot(): Promise<StateSnapshot>;
  /** Everything under the root as put-changes, at one revision: the start of a list+watch. */
  loadAll(): Promise<ChangeBatch>;
  /**
   * Delivers every change after `fromRevision` (exclusive), grouped by revision, in order.
   * If that revision was compacted, onError gets an error for which isCompactedError() is
   * true: the caller then takes a fresh snapshot. `scope` is 'state' (what agents see),
   * 'status' (liveness and acks) or 'all'.
   */
  watch(scope: 'state' | 'status' | 'all', fromRevision: number, onBatch: (batch: ChangeBatch) => void, onError: (err: unknown) => void): Promise<Watch>;
  /** The latest revision of the whole store, and of anything in the state prefix. */
  currentRevision(): Promise<number>;
  close(): void;
}
