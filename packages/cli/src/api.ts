import type {
  ConnectNetworkRequest,
  ContainerDetail,
  CreateEndpointRequest,
  CreateNetworkRequest,
  DeleteEndpointResponse,
  DiagnoseNodeResponse,
  DisconnectNetworkResponse,
  Endpoint,
  ListNodesResponse,
  Network,
  NetworkDetail,
  NetworkSummary,
  NodeDetail,
  RemoveContainerResponse,
  RemoveNetworkResponse,
  RemoveNodeResponse,
  RunContainerRequest,
  CreateServiceRequest,
  ServiceDetail,
  RemoveServiceResponse,
} from '@ctnet/proto';

/**
 * What the commands need from the manager: the ManagerService RPCs as promises. The
 * real implementation (grpc-api.ts) talks gRPC with a deadline and rejects with a
 * CtnetError whose message is ready to print; unit tests pass a fake.
 */
export interface ManagerApi {
  createNetwork(req: CreateNetworkRequest): Promise<Network>;
  listNetworks(): Promise<NetworkSummary[]>;
  inspectNetwork(nameOrId: string): Promise<NetworkDetail>;
  removeNetwork(nameOrId: string): Promise<RemoveNetworkResponse>;
  connectNetwork(req: ConnectNetworkRequest): Promise<Endpoint>;
  disconnectNetwork(network: string, container: string): Promise<DisconnectNetworkResponse>;
  containerLogs(name: string): Promise<Buffer>;
  listNodes(): Promise<ListNodesResponse>;
  inspectNode(name: string): Promise<NodeDetail>;
  diagnoseNode(name: string): Promise<DiagnoseNodeResponse>;
  removeNode(name: string, force: boolean): Promise<RemoveNodeResponse>;
  createEndpoint(req: CreateEndpointRequest): Promise<Endpoint>;
  deleteEndpoint(network: string, name: string): Promise<DeleteEndpointResponse>;
  listEndpoints(filter: { network: string; node: string }): Promise<Endpoint[]>;
  runContainer(req: RunContainerRequest): Promise<ContainerDetail>;
  removeContainer(name: string): Promise<RemoveContainerResponse>;
  listContainers(filter: { node: string }): Promise<ContainerDetail[]>;
  inspectContainer(name: string): Promise<ContainerDetail>;
  createService(req: CreateServiceRequest): Promise<ServiceDetail>;
  listServices(): Promise<ServiceDetail[]>;
  inspectService(name: string): Promise<ServiceDetail>;
  scaleService(name: string, replicas: number): Promise<ServiceDetail>;
  removeService(name: string): Promise<RemoveServiceResponse>;
  /** The worker join token (a new one first when `rotate`). */
  joinToken(rotate: boolean): Promise<string>;
  /** Signs an admin certificate for `name` over a CSR (the key never leaves the caller). */
  issueAdminCert(name: string, csrPem: string): Promise<{ certPem: string; caPem: string }>;
  /** Revokes every admin certificate issued under `name`; how many. */
  revokeAdminCert(name: string): Promise<number>;
  /** Rolls the cluster's root CA (see the manager's RotateCa). */
  rotateCa(force: boolean): Promise<{ digest: string; nodesRenewed: number; nodesTotal: number; pending: string[]; finished: boolean }>;
}

/** Where a command writes; process.stdout and process.stderr fit, and so does a test buffer. */
export interface Writer {
  write(chunk: string): unknown;
}

export interface CommandContext {
  readonly client: ManagerApi;
  readonly out: Writer;
  readonly err: Writer;
}

/** One `ctmgr <noun> <verb>` or `ctmgr <verb>`: its grammar (for help listings) and what it does. */
export interface Command {
  readonly path: string; // "network ls", or "ps" for the Docker-style container verbs
  readonly aliases?: readonly string[]; // other spellings of the verb, e.g. "list"
  readonly summary: string;
  run(args: readonly string[], ctx: CommandContext): Promise<number>;
}
