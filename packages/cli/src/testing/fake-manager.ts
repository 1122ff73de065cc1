import { CtnetError, ErrorCode } from '@ctnet/core';
import type {
  CreateServiceRequest,
  ServiceDetail,
  RemoveServiceResponse,
  Container,
  ContainerDetail,
  CreateEndpointRequest,
  CreateNetworkRequest,
  Endpoint,
  Network,
  NetworkDetail,
  NodeDetail,
  NodeStatus,
  RunContainerRequest,
} from '@ctnet/proto';
import type { ManagerApi, Writer } from '../api.js';
import { type CliIo, runCli } from '../run.js';

/** Test-only: an in-memory ManagerApi that records calls. Not compiled into dist. */

export function wireNetwork(over: Partial<Network> = {}): Network {
  return {
    id: '3f2a9c1d5e7b4a6c8d0e1f2a3b4c5d6e',
    name: 'blue',
    driver: 'overlay',
    vni: 4097,
    subnet: '10.10.0.0/24',
    gateway: '10.10.0.1',
    ipRange: '10.10.0.0/24',
    auxAddresses: {},
    attachable: false,
    internal: false,
    mtu: 0,
    parent: '',
    options: {},
    labels: {},
    createdAt: '2026-01-02T03:04:05Z',
    node: '',
    hostSubnets: {},
    ...over,
  };
}

export function wireEndpoint(over: Partial<Endpoint> = {}): Endpoint {
  return {
    id: 'e1e2e3e4e5e6e7e8e9e0',
    networkId: wireNetwork().id,
    name: 'web',
    node: 'host1',
    ip: '10.10.0.2',
    mac: '02:42:0a:0a:00:02',
    aliases: [],
    createdAt: '2026-01-02T03:05:00Z',
    container: '',
    origin: '',
    ports: [],
    ...over,
  };
}

export function wireContainer(over: Partial<Container> = {}): Container {
  return {
    id: 'c0ffee0123456789abcdef0123456789',
    name: 'web',
    node: 'host1',
    cmd: ['sleep', 'infinity'],
    env: {},
    hostname: 'web',
    dns: [],
    dnsSearch: [],
    mode: 'network',
    sharedWith: '',
    attachPid: 0,
    ports: [],
    expose: [],
    links: [],
    createdAt: '2026-01-02T03:06:00Z',
    ...over,
  };
}

/** A container with one endpoint on wireNetwork(), as RunContainer answers. */
export function wireContainerDetail(over: Partial<Container> = {}, endpoints?: Endpoint[]): ContainerDetail {
  const container = wireContainer(over);
  return {
    container,
    endpoints: endpoints ?? [wireEndpoint({ id: `ep-${container.id}`, name: container.name, node: container.node, container: container.id })],
  };
}

export function wireNodeStatus(name: string, over: Partial<NodeStatus> = {}): NodeStatus {
  return {
    node: { name, addr: '192.168.50.11', hostname: name, labels: {}, routes: [], registeredAt: '2026-01-01T00:00:00Z', problems: {}, dockerNetworks: {} },
    status: 'ready',
    endpoints: 0,
    ackedRevision: 40,
    lag: 0,
    lastAckAt: '2026-01-02T00:00:00Z',
    ...over,
  };
}

export const notFound = (what: string): CtnetError =>
  new CtnetError(ErrorCode.NotFound, `network "${what}" not found; list networks with "ctmgr network ls"`);

export class FakeManager implements ManagerApi {
  readonly calls: { method: string; args: unknown[] }[] = [];
  networks: { network: Network; endpoints: number }[] = [];
  networkDetails = new Map<string, NetworkDetail>();
  nodes: NodeStatus[] = [];
  nodeDetails = new Map<string, NodeDetail>();
  endpoints: Endpoint[] = [];
  containers: ContainerDetail[] = [];
  /** Rejections keyed by method name, or by "method:arg" for one argument. */
  failures = new Map<string, CtnetError>();
  closed = false;

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const failure = this.failures.get(`${method}:${String(args[0])}`) ?? this.failures.get(method);
    if (failure) throw failure;
  }

  async createNetwork(req: CreateNetworkRequest): Promise<Network> {
    this.record('createNetwork', req);
    return wireNetwork({ id: 'new0123456789abcdef', name: req.name });
  }
  async listNetworks() {
    this.record('listNetworks');
    return this.networks;
  }
  async inspectNetwork(nameOrId: string): Promise<NetworkDetail> {
    this.record('inspectNetwork', nameOrId);
    const d = this.networkDetails.get(nameOrId);
    if (!d) throw notFound(nameOrId);
    return d;
  }
  async removeNetwork(nameOrId: string) {
    this.record('removeNetwork', nameOrId);
    return { id: nameOrId };
  }
  async listNodes() {
    this.record('listNodes');
    return { nodes: this.nodes, stateRevision: 42 };
  }
  async inspectNode(name: string): Promise<NodeDetail> {
    this.record('inspectNode', name);
    const d = this.nodeDetails.get(name);
    if (!d) throw new CtnetError(ErrorCode.NotFound, `node "${name}" not found`);
    return d;
  }
  /** Reports by node name (JSON of core's HostDiagnosis); a node without one is not connected. */
  diagnoses = new Map<string, string>();
  async diagnoseNode(name: string) {
    this.record('diagnoseNode', name);
    const reportJson = this.diagnoses.get(name);
    if (reportJson === undefined) throw new CtnetError(ErrorCode.Unavailable, `the agent of node ${name} is not connected to this manager`);
    return { node: name, reportJson };
  }
  async removeNode(name: string, force: boolean) {
    this.record('removeNode', name, force);
    return { name, endpointsRemoved: 0 };
  }
  async createEndpoint(req: CreateEndpointRequest): Promise<Endpoint> {
    this.record('createEndpoint', req);
    return wireEndpoint({ id: 'ep0123456789', name: req.name });
  }
  async connectNetwork(req: { network: string; container: string; ip: string; aliases: string[] }): Promise<Endpoint> {
    this.record('connectNetwork', req);
    return wireEndpoint({ id: 'ep0123456789', name: req.container });
  }
  async containerLogs(name: string) {
    this.record('containerLogs', name);
    return Buffer.from('one\ntwo\nthree\n');
  }
  async disconnectNetwork(network: string, container: string) {
    this.record('disconnectNetwork', network, container);
    return { ip: '10.10.0.9' };
  }
  async deleteEndpoint(network: string, name: string) {
    this.record('deleteEndpoint', network, name);
    return { ip: '10.10.0.2' };
  }
  async listEndpoints(filter: { network: string; node: string }) {
    this.record('listEndpoints', filter);
    return this.endpoints;
  }
  async runContainer(req: RunContainerRequest): Promise<ContainerDetail> {
    this.record('runContainer', req);
    return wireContainerDetail({ name: req.name, node: req.node || 'host1', cmd: req.cmd, env: req.env });
  }
  async removeContainer(name: string) {
    this.record('removeContainer', name);
    return { name, released: ['10.10.0.2'] };
  }
  async listContainers(filter: { node: string }) {
    this.record('listContainers', filter);
    return this.containers;
  }
  async inspectContainer(name: string): Promise<ContainerDetail> {
    this.record('inspectContainer', name);
    const d = this.containers.find((c) => c.container?.name === name);
    if (!d) throw new CtnetError(ErrorCode.NotFound, `no container named ${name}; list them with "ctmgr ps"`);
    return d;
  }
  close(): void {
    this.closed = true;
  }
  services: ServiceDetail[] = [];
  async createService(req: CreateServiceRequest): Promise<ServiceDetail> {
    this.record('createService', req);
    return this.services.find((s) => s.service?.name === req.name) ?? { service: undefined, tasks: [], vips: [], running: 0, nodesReady: 0, nodesConverged: 0, converged: true, pending: '', revision: 0 };
  }
  async listServices(): Promise<ServiceDetail[]> {
    this.record('listServices');
    return this.services;
  }
  async inspectService(name: string): Promise<ServiceDetail> {
    this.record('inspectService', name);
    const found = this.services.find((s) => s.service?.name === name);
    if (!found) throw new CtnetError(ErrorCode.NotFound, `no service named ${name}`);
    return found;
  }
  async scaleService(name: string, replicas: number): Promise<ServiceDetail> {
    this.record('scaleService', name, replicas);
    return this.inspectService(name);
  }
  async removeService(name: string): Promise<RemoveServiceResponse> {
    this.record('removeService', name);
    return { name, tasks: 0 };
  }
  async joinToken(rotate: boolean): Promise<string> {
    this.record('joinToken', rotate);
    return `CTNET-1-${'a'.repeat(50)}-${'b'.repeat(25)}`;
  }
  async issueAdminCert(name: string, csrPem: string): Promise<{ certPem: string; caPem: string }> {
    this.record('issueAdminCert', name, csrPem);
    return { certPem: 'CERT', caPem: 'CA' };
  }
  async rotateCa(force: boolean): Promise<{ digest: string; nodesRenewed: number; nodesTotal: number; pending: string[]; finished: boolean }> {
    this.record('rotateCa', force);
    return { digest: 'd'.repeat(50), nodesRenewed: 2, nodesTotal: 3, pending: force ? [] : ['h3'], finished: force };
  }
  async revokeAdminCert(name: string): Promise<number> {
    this.record('revokeAdminCert', name);
    return 1;
  }
}

export class Capture implements Writer {
  text = '';
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

/** Runs ctmgr in-process against `fake`; returns the exit code and what it printed. */
export async function ctmgr(
  fake: FakeManager,
  argv: readonly string[],
  extra: Partial<CliIo> & { env?: Record<string, string> } = {},
): Promise<{ code: number; out: string; err: string; address: string | undefined }> {
  const out = new Capture();
  const err = new Capture();
  let address: string | undefined;
  const code = await runCli(argv, extra.env ?? {}, {
    out,
    err,
    connect: (a) => {
      address = a;
      return fake;
    },
    ...(extra.serve && { serve: extra.serve }),
    ...(extra.onShutdown && { onShutdown: extra.onShutdown }),
  });
  return { code, out: out.text, err: err.text, address };
}
