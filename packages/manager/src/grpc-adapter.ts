import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import { CtnetError, ErrorCode } from '@ctnet/core';
import { peerCertificate, toServiceError, type ManagerServiceServer } from '@ctnet/proto';
import type { ManagerDeps } from './deps.js';
import { createNetwork, inspectNetwork, listNetworks, removeNetwork } from './handlers/networks.js';
import { createEndpoint, deleteEndpoint, listEndpoints, updateEndpoint } from './handlers/endpoints.js';
import { diagnoseNode, inspectNode, listNodes, removeNode } from './handlers/nodes.js';
import { createService, inspectService, listServices, removeService, scaleService } from './handlers/services.js';
import { connectNetwork, containerLogs, disconnectNetwork, inspectContainer, listContainers, removeContainer, runContainer } from './handlers/containers.js';
import { authorizeRequest, issueAdminCert, joinToken, NODE_METHODS, revokeAdminCert, rotateCa } from './handlers/security.js';

/** The handler table: plain async functions of (deps, request). */
export const handlers = {
  createNetwork,
  listNetworks,
  inspectNetwork,
  removeNetwork,
  listNodes,
  inspectNode,
  removeNode,
  diagnoseNode,
  createEndpoint,
  deleteEndpoint,
  updateEndpoint,
  listEndpoints,
  runContainer,
  removeContainer,
  listContainers,
  inspectContainer,
  connectNetwork,
  disconnectNetwork,
  containerLogs,
  createService,
  listServices,
  inspectService,
  scaleService,
  removeService,
  joinToken,
  issueAdminCert,
  revokeAdminCert,
  rotateCa,
} satisfies Record<keyof ManagerServiceServer, (deps: ManagerDeps, req: never) => Promise<unknown>>;

export function createManagerService(deps: ManagerDeps): ManagerServiceServer {
  const impl: Record<string, unknown> = {};
  for (const [method, handler] of Object.entries(handlers)) {
    impl[method] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const stop = deps.metrics.requestSeconds.startTimer({ method });
      // Every call proves who it is (mutual TLS, checked against the CA and the revocation
      // list), then what its role may ask: nothing reaches a handler unauthenticated.
      const authorized = (async () => {
        const caller = await deps.authority.identify(peerCertificate(call), NODE_METHODS.has(method) ? ['admin', 'node'] : ['admin']);
        await authorizeRequest(deps, method, caller, call.request);
        return (handler as (d: ManagerDeps, r: unknown) => Promise<unknown>)(deps, call.request);
      })();
      authorized.then(
        (res) => {
          stop();
          deps.metrics.requests.inc({ method, code: 'OK' });
          callback(null, res);
        },
        (err: unknown) => {
          stop();
          const e = CtnetError.from(err);
          deps.metrics.requests.inc({ method, code: e.code });
          if (e.code === ErrorCode.Internal) deps.log.error(`${method} failed`, { error: e.message, stack: e.stack ?? '' });
          if (e.code === ErrorCode.Unauthenticated || e.code === ErrorCode.PermissionDenied) deps.log.warn(`${method} refused`, { peer: call.getPeer(), error: e.message });
          callback(toServiceError(e));
        },
      );
    };
  }
  return impl as ManagerServiceServer;
}
