import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtnetError, ErrorCode, formatHostPort, parseHostPort } from '@ctnet/core';
import {
  type ListContainersResponse,
  type ListEndpointsResponse,
  type ListNetworksResponse,
  type ListServicesResponse,
  clientCredentials,
  clientOptions,
  CODE_METADATA_KEY,
  fromServiceError,
  ManagerServiceClient,
} from '@ctnet/proto';
import {
  type CallOptions,
  type ClientUnaryCall,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import type { ManagerApi } from './api.js';
import { DEFAULT_TLS_DIR } from './defaults.js';

export const DEFAULT_TIMEOUT_MS = 15_000;
/** Where `ctmgr serve` writes the admin credential with the default --data-dir. */
export { DEFAULT_TLS_DIR };

/** The admin credential in `dir`, or one clear line naming the fix. */
export function readAdminCredential(dir: string): { caPem: string; certPem: string; keyPem: string } {
  const read = (file: string): string => {
    try {
      return readFileSync(join(dir, file), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'is missing' : code === 'EACCES' ? 'is not readable by this user (run as root, or copy the credential)' : `cannot be read (${code})`;
      throw new CtnetError(
        ErrorCode.Unauthenticated,
        `no admin credential: ${join(dir, file)} ${why}; on a manager host run ctmgr as root (it reads ${DEFAULT_TLS_DIR}), or pass --tls-dir DIR (or CTNET_TLS_DIR) with a credential made by "ctmgr admin-cert --name NAME --out DIR"`,
        { cause: err },
      );
    }
  };
  return { caPem: read('ca.pem'), certPem: read('cert.pem'), keyPem: read('key.pem') };
}

type Callback<Res> = (error: ServiceError | null, response: Res) => void;
type Start<Res> = (
  client: ManagerServiceClient,
  metadata: Metadata,
  options: Partial<CallOptions>,
  callback: Callback<Res>,
) => ClientUnaryCall;

/**
 * The one adapter between the commands and grpc-js. Every call carries a deadline so the
 * CLI never hangs, and every failure becomes a CtnetError whose message is ready to print.
 * The channel is created on the first call, so `--help` and usage errors open nothing.
 */
export class GrpcManagerApi implements ManagerApi {
  private raw: ManagerServiceClient | undefined;

  constructor(
    private readonly address: string,
    private readonly timeoutMs: number = DEFAULT_TIMEOUT_MS,
    /** The admin credential: ca.pem, cert.pem, key.pem. */
    private readonly tlsDir: string = DEFAULT_TLS_DIR,
  ) {}

  joinToken: ManagerApi['joinToken'] = async (rotate) =>
    (await this.unary<{ token: string }>('JoinToken', (c, m, o, cb) => c.joinToken({ role: 'worker', rotate }, m, o, cb))).token;
  issueAdminCert: ManagerApi['issueAdminCert'] = (name, csrPem) =>
    this.unary('IssueAdminCert', (c, m, o, cb) => c.issueAdminCert({ name, csrPem }, m, o, cb));
  // A rotation waits up to a minute for every node to renew: give it longer than that.
  rotateCa: ManagerApi['rotateCa'] = (force) =>
    this.unary('RotateCa', (c, m, o, cb) => c.rotateCa({ force }, m, { ...o, deadline: Date.now() + Math.max(this.timeoutMs, 90_000) }, cb));
  revokeAdminCert: ManagerApi['revokeAdminCert'] = async (name) =>
    (await this.unary<{ revoked: number }>('RevokeAdminCert', (c, m, o, cb) => c.revokeAdminCert({ name }, m, o, cb))).revoked;

  createNetwork: ManagerApi['createNetwork'] = (req) =>
    this.unary('CreateNetwork', (c, m, o, cb) => c.createNetwork(req, m, o, cb));
  listNetworks: ManagerApi['listNetworks'] = async () =>
    (await this.unary<ListNetworksResponse>('ListNetworks', (c, m, o, cb) => c.listNetworks({}, m, o, cb))).networks;
  inspectNetwork: ManagerApi['inspectNetwork'] = (nameOrId) =>
    this.unary('InspectNetwork', (c, m, o, cb) => c.inspectNetwork({ nameOrId }, m, o, cb));
  removeNetwork: ManagerApi['removeNetwork'] = (nameOrId) =>
    this.unary('RemoveNetwork', (c, m, o, cb) => c.removeNetwork({ nameOrId }, m, o, cb));
  connectNetwork: ManagerApi['connectNetwork'] = (req) => this.unary('ConnectNetwork', (c, m, o, cb) => c.connectNetwork(req, m, o, cb));
  containerLogs: ManagerApi['containerLogs'] = async (name) =>
    (await this.unary<{ data: Buffer }>('ContainerLogs', (c, m, o, cb) => c.containerLogs({ name, tailBytes: 0 }, m, o, cb))).data;
  disconnectNetwork: ManagerApi['disconnectNetwork'] = (network, container) =>
    this.unary('DisconnectNetwork', (c, m, o, cb) => c.disconnectNetwork({ network, container }, m, o, cb));
  listNodes: ManagerApi['listNodes'] = () => this.unary('ListNodes', (c, m, o, cb) => c.listNodes({}, m, o, cb));
  diagnoseNode: ManagerApi['diagnoseNode'] = (node) =>
    // The manager waits up to 20 s for the agent (which reads its kernel after any run in
    // progress): wait longer, so its answer naming the cause arrives, not our deadline.
    this.unary('DiagnoseNode', (c, m, o, cb) => c.diagnoseNode({ node }, m, { ...o, deadline: Date.now() + Math.max(this.timeoutMs, 30_000) }, cb));
  inspectNode: ManagerApi['inspectNode'] = (name) =>
    this.unary('InspectNode', (c, m, o, cb) => c.inspectNode({ name }, m, o, cb));
  removeNode: ManagerApi['removeNode'] = (name, force) =>
    this.unary('RemoveNode', (c, m, o, cb) => c.removeNode({ name, force }, m, o, cb));
  createEndpoint: ManagerApi['createEndpoint'] = (req) =>
    this.unary('CreateEndpoint', (c, m, o, cb) => c.createEndpoint(req, m, o, cb));
  deleteEndpoint: ManagerApi['deleteEndpoint'] = (network, name) =>
    this.unary('DeleteEndpoint', (c, m, o, cb) => c.deleteEndpoint({ network, name }, m, o, cb));
  listEndpoints: ManagerApi['listEndpoints'] = async (filter) =>
    (await this.unary<ListEndpointsResponse>('ListEndpoints', (c, m, o, cb) => c.listEndpoints(filter, m, o, cb))).endpoints;
  runContainer: ManagerApi['runContainer'] = (req) =>
    this.unary('RunContainer', (c, m, o, cb) => c.runContainer(req, m, o, cb));
  removeContainer: ManagerApi['removeContainer'] = (name) =>
    this.unary('RemoveContainer', (c, m, o, cb) => c.removeContainer({ name }, m, o, cb));
  listContainers: ManagerApi['listContainers'] = async (filter) =>
    (await this.unary<ListContainersResponse>('ListContainers', (c, m, o, cb) => c.listContainers(filter, m, o, cb)))
      .containers;
  inspectContainer: ManagerApi['inspectContainer'] = (name) =>
    this.unary('InspectContainer', (c, m, o, cb) => c.inspectContainer({ name }, m, o, cb));

  createService: ManagerApi['createService'] = (req) => this.unary('CreateService', (c, m, o, cb) => c.createService(req, m, o, cb));
  listServices: ManagerApi['listServices'] = async () =>
    (await this.unary<ListServicesResponse>('ListServices', (c, m, o, cb) => c.listServices({}, m, o, cb))).services;
  inspectService: ManagerApi['inspectService'] = (name) => this.unary('InspectService', (c, m, o, cb) => c.inspectService({ name }, m, o, cb));
  scaleService: ManagerApi['scaleService'] = (name, replicas) =>
    this.unary('ScaleService', (c, m, o, cb) => c.scaleService({ name, replicas }, m, o, cb));
  removeService: ManagerApi['removeService'] = (name) => this.unary('RemoveService', (c, m, o, cb) => c.removeService({ name }, m, o, cb));

  close(): void {
    this.raw?.close();
    this.raw = undefined;
  }

  private client(): ManagerServiceClient {
    if (this.raw === undefined) {
      const target = formatHostPort(parseHostPort(this.address, '--manager'));
      this.raw = new ManagerServiceClient(target, clientCredentials(readAdminCredential(this.tlsDir)), clientOptions());
    }
    return this.raw;
  }

  private unary<Res>(method: string, start: Start<Res>): Promise<Res> {
    return new Promise((resolve, reject) => {
      try {
        const deadline = Date.now() + this.timeoutMs;
        start(this.client(), new Metadata(), { deadline }, (error, response) => {
          if (error) reject(errorFromGrpc(error, { method, address: this.address, timeoutMs: this.timeoutMs }));
          else resolve(response);
        });
      } catch (err) {
        reject(err instanceof CtnetError ? err : CtnetError.from(err));
      }
    });
  }
}

/** A status number's name is a ctnet code when ctnet has that code (the transport module's mapping). */
const codeOf = (error: ServiceError): ErrorCode => {
  const named = fromServiceError(error).code;
  return error.code === status.UNKNOWN || error.code === status.INTERNAL || error.code === status.UNIMPLEMENTED || named === ErrorCode.Unavailable && error.code !== status.UNAVAILABLE
    ? ErrorCode.Internal
    : named;
};


/**
 * Without that key (an older manager, or no manager at all), these are the details that
 * grpc-js itself writes when no server answered; a CtnetError message never
 * starts like these.
 */
const TRANSPORT_DETAILS =
  /^(No connection established|Connection dropped|Stream refused by server|Name resolution failed|Failed to parse DNS address|Channel closed|Subchannel not ready|Write failed|read ECONN|connect ECONN|Received HTTP status code|Received RST_STREAM|Deadline exceeded|Protocol error)/;

export interface CallSite {
  readonly method: string;
  readonly address: string;
  readonly timeoutMs: number;
}

/** Maps a grpc-js failure back to the CtnetError the manager raised, or to a transport error. */
export function errorFromGrpc(error: ServiceError, site: CallSite): CtnetError {
  const details = (error.details ?? '').trim();
  // The manager's adapter names the CtnetError code in trailing metadata: trust it first.
  const named = error.metadata?.get(CODE_METADATA_KEY)[0];
  if (typeof named === 'string' && details !== '') {
    const code = (Object.values(ErrorCode) as string[]).includes(named) ? (named as ErrorCode) : ErrorCode.Internal;
    return new CtnetError(code, details, { cause: error });
  }
  const http = /Received HTTP status code (\d+)/.exec(details);
  if (http || error.code === status.UNIMPLEMENTED) {
    const what = http ? `answered HTTP ${http[1]}` : `does not implement ${site.method}`;
    return new CtnetError(
      ErrorCode.FailedPrecondition,
      `the server at ${site.address} ${what}; point --manager or CTNET_MANAGER at a "ctmgr serve" of the same ctnet version`,
      { cause: error },
    );
  }
  const code = codeOf(error);
  const fromTransport = details === '' || TRANSPORT_DETAILS.test(details);
  if (!fromTransport) return new CtnetError(code, details, { cause: error });

  switch (error.code) {
    case status.UNAVAILABLE:
    case status.UNKNOWN:
    case status.INTERNAL: {
      const reason = transportReason(details);
      return new CtnetError(
        ErrorCode.Unavailable,
        `cannot reach the manager at ${site.address}${reason ? `: ${reason}` : ''} (is "ctmgr serve" running? set --manager or CTNET_MANAGER)`,
        { cause: error },
      );
    }
    case status.DEADLINE_EXCEEDED:
      return new CtnetError(
        ErrorCode.DeadlineExceeded,
        `the manager at ${site.address} did not answer ${site.method} within ${formatSeconds(site.timeoutMs)}; check that it is running and healthy, then retry`,
        { cause: error },
      );
    default:
      return new CtnetError(code, `${site.method} failed at ${site.address}: ${firstLine(error.message)}`, {
        cause: error,
      });
  }
}

/** "No connection established. Last error: Error: connect ECONNREFUSED …" -> "connection refused". */
function transportReason(details: string): string {
  if (/ECONNREFUSED/.test(details)) return 'connection refused';
  if (/certificate|self.signed|unable to verify|CERT_|Hostname\/IP does not match/i.test(details)) {
    return 'its TLS certificate is not signed by the CA in the admin credential (another cluster\'s manager, or another credential is needed: --tls-dir)';
  }
  if (/before secure TLS connection|wrong version number|packet length too long|http\/1|EPROTO/i.test(details)) {
    return 'no TLS handshake (is it a ctmgr of this version, serving mutual TLS?)';
  }
  if (/ECONNRESET|Connection dropped/.test(details)) return 'connection reset';
  if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(details)) return 'host unreachable';
  if (/ENOTFOUND|EAI_AGAIN|Name resolution failed/.test(details)) return 'name not resolved';
  if (/Protocol error|RST_STREAM/.test(details)) return 'not a gRPC endpoint';
  return '';
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? '';
}
