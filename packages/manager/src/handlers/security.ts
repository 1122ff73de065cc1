import { invalidArgument, isAttached, nameKey, permissionDenied } from '@ctnet/core';
import type { Identity } from '@ctnet/pki';
import type {
  IssueAdminCertRequest,
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

/** The methods a node certificate may call (its own attachments); every other one is admin-only. */
export const NODE_METHODS: ReadonlySet<string> = new Set(['runContainer', 'removeContainer', 'listNodes']);

/**
 * What a caller may ask beyond its role. Attaching an existing process names a PID on a
 * host: only that host's agent credential (root on that host) may do it, for itself; the
 * admin API never can. A node may remove only what it attached.
 */
export function authorizeRequest(deps: ManagerDeps, method: string, caller: Identity, req: unknown): void {
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
  if (method === 'removeContainer' && caller.role === 'node') {
    const c = deps.view.containers.get(nameKey((req as RemoveContainerRequest).name));
    // None by that name: the handler says NotFound (a repeated CNI DEL is a success); a node
    // learns nothing it does not stream anyway.
    if (c && (nameKey(c.node) !== caller.name || !isAttached(c))) {
      throw permissionDenied(`node ${caller.name} may only detach what it attached on itself (ctagent detach)`);
    }
  }
}
