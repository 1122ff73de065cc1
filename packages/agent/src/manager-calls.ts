import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { unavailable } from '@ctnet/core';
import {
  clientCredentials,
  clientOptions,
  fromServiceError,
  ManagerServiceClient,
  type ContainerDetail,
  type CreateEndpointRequest,
  type CreateNetworkRequest,
  type Endpoint,
  type ListNodesResponse,
  type Network,
  type UpdateEndpointRequest,
  type RemoveContainerResponse,
  type RunContainerRequest,
} from '@ctnet/proto';
import type { NodeTls } from './tls.js';

/** What this host's agent asks of the managers on behalf of local callers (the CNI plugin), as this node. */
export interface ManagerCalls {
  /** deadlineMs: shorter when the caller holds something while it waits (the reconciler, for a CNI ADD). */
  runContainer(req: RunContainerRequest, deadlineMs?: number): Promise<ContainerDetail>;
  removeContainer(name: string): Promise<RemoveContainerResponse>;
  listNodes(): Promise<ListNodesResponse>;
  /** The Docker plugin's calls: endpoints of this host's Docker, networks made through it. */
  createEndpoint(req: CreateEndpointRequest): Promise<Endpoint>;
  deleteEndpoint(network: string, name: string): Promise<unknown>;
  updateEndpoint(req: UpdateEndpointRequest): Promise<Endpoint>;
  createNetwork(req: CreateNetworkRequest): Promise<Network>;
  removeNetwork(nameOrId: string): Promise<unknown>;
  close(): void;
}

/**
 * Calls go to the manager the stream is up to, over one channel kept open (a TLS handshake
 * per call would cost more than the call); a new manager or a renewed certificate opens a
 * new one.
 */
export function createManagerCalls(manager: () => string | undefined, tls: NodeTls, deadlineMs = 30_000): ManagerCalls {
  let open: { addr: string; cred: unknown; client: ManagerServiceClient } | undefined;
  const client = (): ManagerServiceClient => {
    const addr = manager();
    if (!addr) throw unavailable('this agent is not connected to any manager right now; try again in a moment');
    const cred = tls.current();
    if (open?.addr !== addr || open.cred !== cred) {
      open?.client.close();
      open = { addr, cred, client: new ManagerServiceClient(addr, clientCredentials(cred), clientOptions()) };
    }
    return open.client;
  };
  const call = <T>(fn: (c: ManagerServiceClient, md: Metadata, opts: { deadline: Date }, cb: (e: ServiceError | null, r: T) => void) => void, ms = deadlineMs): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const c = client();
      fn(c, new Metadata(), { deadline: new Date(Date.now() + ms) }, (e, r) => (e ? reject(fromServiceError(e)) : resolve(r)));
    });
  return {
    runContainer: (req, ms) => call((c, m, o, cb) => c.runContainer(req, m, o, cb), ms),
    removeContainer: (name) => call((c, m, o, cb) => c.removeContainer({ name }, m, o, cb)),
    listNodes: () => call((c, m, o, cb) => c.listNodes({}, m, o, cb)),
    createEndpoint: (req) => call((c, m, o, cb) => c.createEndpoint(req, m, o, cb), 10_000),
    deleteEndpoint: (network, name) => call((c, m, o, cb) => c.deleteEndpoint({ network, name }, m, o, cb), 10_000),
    updateEndpoint: (req) => call((c, m, o, cb) => c.updateEndpoint(req, m, o, cb), 10_000),
    createNetwork: (req) => call((c, m, o, cb) => c.createNetwork(req, m, o, cb), 10_000),
    removeNetwork: (nameOrId) => call((c, m, o, cb) => c.removeNetwork({ nameOrId }, m, o, cb), 10_000),
    close() {
      open?.client.close();
      open = undefined;
    },
  };
}
