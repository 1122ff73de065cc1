import { DOCKER_ORIGIN_LABEL, invalidArgument, isAttached, nameKey, notFound, parseName, permissionDenied } from '@ctnet/core';
import type { Identity } from '@ctnet/pki';
import type {
  CreateEndpointRequest,
  CreateNetworkRequest,
  DeleteEndpointRequest,
  IssueAdminCertRequest,
  RemoveNetworkRequest,
  UpdateEndpointRequest,
  IssueAdminCertResponse,
  JoinTokenRequest,
  JoinTokenResponse,
  RemoveContainerRequest,
  RevokeAdminCertRequest,
  RevokeAdminCertResponse,
  RotateCaRequest,
  RotateCaResponse,
  RunContainerRequest,
} from '@ctnet/proto';
import type { ManagerDeps } from '../deps.js';
import { findNetwork } from './networks.js';

export async function joinToken(deps: ManagerDeps, req: JoinTokenRequest): Promise<JoinTokenResponse> {
  const role = req.role.trim() || 'worker';
  if (role !== 'worker') {
    throw invalidArgument(`there is no "${role}" join token; managers share etcd instead of joining (use "ctmgr join-token worker")`);
  }
  return { token: await deps.authority.joinToken(req.rotate) };
}

export async function issueAdminCert(deps: ManagerDeps, req: IssueAdminCertRequest): Promise<IssueAdminCertResponse> {
  const { certPem, caPem } = await deps.authority.issueAdmin(req.name, req.csrPem);
  deps.log.info('issued an admin certificate', { name: req.name });
  return { certPem, caPem };
}

export async function revokeAdminCert(deps: ManagerDeps, req: RevokeAdminCertRequest): Promise<RevokeAdminCertResponse> {
  const revoked = await deps.authority.revokeAdmin(req.name);
  deps.log.info('revoked admin certificates', { name: req.name, revoked });
  return { revoked };
}

export async function rotateCa(deps: ManagerDeps, req: RotateCaRequest): Promise<RotateCaResponse> {
  const r = await deps.authority.rotateCa(req.force);
  return { digest: r.digest, nodesRenewed: r.renewed, nodesTotal: r.total, pending: r.pending, finished: r.finished };
}

/**
 * The methods a node certificate may call (its own attachments, and what its Docker plugin
 * does for the host's dockerd); every other one is admin-only.
 */
export const NODE_METHODS: ReadonlySet<string> = new Set([
  'runContainer',
  'removeContainer',
  'listNodes',
  'createEndpoint',
  'deleteEndpoint',
  'updateEndpoint',
  'createNetwork',
  'removeNetwork',
]);


export async function authorizeRequest(deps: ManagerDeps, method: string, caller: Identity, req: unknown): Promise<void> {
  if (method === 'runContainer') {
    const r = req as RunContainerRequest;
    const attaching = isAttached(r);
    if (caller.role === 'admin' && (attaching || r.cni)) {
      throw permissionDenied('attaching a process or a namespace is done on its host only: "ctagent attach --pid PID ..." or the CNI plugin there');
    }
    if (caller.role === 'node' && (!attaching || nameKey(r.node) !== caller.name)) {
      throw permissionDenied(`node ${caller.name} may only attach its own processes and namespaces (ctagent attach, CNI), on itself`);
    }
  }
  if (caller.role === 'node') await authorizeDocker(deps, method, caller, req);
  if (method === 'removeContainer' && caller.role === 'node') {
    const c = deps.view.containers.get(nameKey((req as RemoveContainerRequest).name));
    // None by that name: the handler says NotFound (a repeated CNI DEL is a success); a node
    // learns nothing it does not stream anyway.
    if (c && (nameKey(c.node) !== caller.name || !isAttached(c))) {
      throw permissionDenied(`node ${caller.name} may only detach what it attached on itself (ctagent detach)`);
    }
  }
}

/**
 * What a node's Docker plugin may do: endpoints of its own Docker, networks made through
 * Docker. The target is resolved exactly as the handler resolves it (an id prefix, a padded
 * name), from the store, so no spelling reaches a record the check did not look at; one that
 * does not exist is NotFound here already.
 */
async function authorizeDocker(deps: ManagerDeps, method: string, caller: Identity, req: unknown): Promise<void> {
  const plugin = `node ${caller.name}'s Docker plugin`;
  switch (method) {
    case 'createEndpoint': {
      const r = req as CreateEndpointRequest;
      if (r.origin !== 'docker' || nameKey(r.node) !== caller.name) throw permissionDenied(`${plugin} may only create Docker endpoints on ${caller.name}`);
      return;
    }
    case 'deleteEndpoint':
    case 'updateEndpoint': {
      const r = req as DeleteEndpointRequest | UpdateEndpointRequest;
      const net = await findNetwork(deps, r.network);
      const name = parseName(r.name, 'endpoint');
      const ep = await deps.store.getEndpoint(net.id, name);
      if (!ep) throw notFound(`no endpoint named ${name} in network ${net.name}`);
      if (ep.origin !== 'docker' || nameKey(ep.node) !== caller.name) throw permissionDenied(`${plugin} may only change the Docker endpoints of ${caller.name}`);
      return;
    }
    case 'createNetwork': {
      const r = req as CreateNetworkRequest;
      if (r.labels[DOCKER_ORIGIN_LABEL] !== 'docker' || !['', 'overlay'].includes(r.driver) || r.node !== '') {
        throw permissionDenied(`${plugin} may only create overlay networks labelled ${DOCKER_ORIGIN_LABEL}=docker`);
      }
      return;
    }
    case 'removeNetwork': {
      const net = await findNetwork(deps, (req as RemoveNetworkRequest).nameOrId);
      if (net.labels[DOCKER_ORIGIN_LABEL] !== 'docker') {
        throw permissionDenied(`network ${net.name} was created with ctmgr, not through Docker; remove it with "ctmgr network rm ${net.name}"`);
      }
      return;
    }
  }
}
