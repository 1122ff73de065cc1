import { Metadata, status, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { CtnetError, ErrorCode } from '@ctnet/core';
import type { ManagerServiceServer } from '@ctnet/proto';
import type { ManagerDeps } from './deps.js';
import { createNetwork, inspectNetwork, listNetworks, removeNetwork } from './handlers/networks.js';
import { createEndpoint, deleteEndpoint, listEndpoints } from './handlers/endpoints.js';
import { inspectNode, listNodes, removeNode } from './handlers/nodes.js';
import { createService, inspectService, listServices, removeService, scaleService } from './handlers/services.js';
import { connectNetwork, containerLogs, disconnectNetwork, inspectContainer, listContainers, removeContainer, runContainer } from './handlers/containers.js';

/** The handler table: plain async functions of (deps, request). */
export const handlers = {
  createNetwork,
  listNetworks,
  inspectNetwork,
  removeNetwork,
  listNodes,
  inspectNode,
  removeNode,
  createEndpoint,
  deleteEndpoint,
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
} satisfies Record<keyof ManagerServiceServer, (deps: ManagerDeps, req: never) => Promise<unknown>>;

/** The one place CtnetError codes become grpc-js statuses (the CLI maps them back). */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const e = err instanceof CtnetError ? err : CtnetError.from(err);
  const code = (status as unknown as Record<string, number>)[e.code] ?? status.INTERNAL;
  const metadata = new Metadata();
  metadata.set('ctnet-code', e.code);
  return { code, details: e.message, metadata };
}

export function fromServiceError(err: ServiceError): CtnetError {
  const named = err.metadata?.get('ctnet-code')[0];
  const byNumber = Object.entries(status).find(([, v]) => v === err.code)?.[0];
  const code = (Object.values(ErrorCode) as string[]).includes(String(named ?? byNumber))
    ? (String(named ?? byNumber) as ErrorCode)
    : ErrorCode.Unavailable;
  return new CtnetError(code, err.details || err.message, { cause: err });
}

export function createManagerService(deps: ManagerDeps): ManagerServiceServer {
  const impl: Record<string, unknown> = {};
  for (const [method, handler] of Object.entries(handlers)) {
    impl[method] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const stop = deps.metrics.requestSeconds.startTimer({ method });
      (handler as (d: ManagerDeps, r: unknown) => Promise<unknown>)(deps, call.request).then(
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
          callback(toServiceError(e));
        },
      );
    };
  }
  return impl as ManagerServiceServer;
}
