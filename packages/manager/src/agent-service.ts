import type { sendUnaryData, ServerDuplexStream, ServerUnaryCall } from '@grpc/grpc-js';
import { CtnetError, ErrorCode, nameKey, unauthenticated } from '@ctnet/core';
import {
  peerCertificate,
  toServiceError,
  type AgentMessage,
  type AgentServiceServer,
  type CaBundle,
  type JoinRequest,
  type ManagerMessage,
  type NodeCertificate,
  type RenewRequest,
} from '@ctnet/proto';
import { AgentSession } from './agent-stream.js';
import type { AgentSessions, ManagerDeps } from './deps.js';

/**
 * The AgentService: the agent stream (each caller proves it is a node first) and the
 * certificate calls beside it (join with a token, renew, the public CA bundle), plus the
 * registry of live streams by node.
 */
type Call = ServerDuplexStream<AgentMessage, ManagerMessage>;

/** Live sessions of this manager, so handlers can reach a node's agent (e.g. for its logs). */
export interface SessionRegistry extends AgentSessions {
  add(node: string, s: AgentSession): void;
  remove(node: string, s: AgentSession): void;
  get(node: string): AgentSession | undefined;
  /** Ends a node's stream now: its certificate was revoked. */
  revoke(node: string): void;
  /** Asks every connected agent to renew its certificate now (the CA rotated). */
  renewAll(): void;
}

export function createSessionRegistry(): SessionRegistry {
  const live = new Map<string, AgentSession>();
  return {
    add: (node, s) => void live.set(node, s),
    remove: (node, s) => void (live.get(node) === s && live.delete(node)),
    get: (node) => live.get(nameKey(node)),
    renewAll: () => {
      for (const s of live.values()) s.renewNow();
    },
    revoke: (node) => live.get(nameKey(node))?.end(unauthenticated(`the certificate of node ${node} was revoked (the node was removed); join again with a token: ctagent run --join-token TOKEN`)),
    ackedHere: (node) => live.get(nameKey(node))?.acked ?? 0,
    requestLogs(node, container, tailBytes) {
      const s = live.get(nameKey(node));
      if (!s) {
        return Promise.reject(
          new CtnetError(ErrorCode.Unavailable, `the agent of node ${node} is not connected to this manager (it is down, or streams from another manager: ask that one)`),
        );
      }
      return s.requestLogs(container, tailBytes);
    },
    requestDiag(node) {
      const s = live.get(nameKey(node));
      if (!s) {
        return Promise.reject(
          new CtnetError(ErrorCode.Unavailable, `the agent of node ${node} is not connected to this manager (it is down, or streams from another manager: ask that one); on the host itself, run "ctagent diag"`),
        );
      }
      return s.requestDiag();
    },
  };
}

export function createAgentService(deps: ManagerDeps, registry: SessionRegistry): AgentServiceServer {
  const refused = (what: string, peer: string, err: unknown): CtnetError => {
    const e = CtnetError.from(err);
    if (e.code === ErrorCode.Unauthenticated || e.code === ErrorCode.PermissionDenied) deps.log.warn(`${what} refused`, { peer, error: e.message });
    return e;
  };
  const unary =
    <Req>(what: string, handle: (call: ServerUnaryCall<Req, NodeCertificate>) => Promise<NodeCertificate>) =>
    (call: ServerUnaryCall<Req, NodeCertificate>, callback: sendUnaryData<NodeCertificate>) =>
      void handle(call).then(
        (res) => callback(null, res),
        (err: unknown) => callback(toServiceError(refused(what, call.getPeer(), err))),
      );
  return {
    connect: (call: Call) => {
      // Messages that arrive while the caller is checked wait in the stream, unread.
      call.pause();
      deps.authority.identify(peerCertificate(call), ['node']).then(
        (caller) => {
          new AgentSession(deps, call, registry, caller).start();
          call.resume();
        },
        (err: unknown) => call.emit('error', toServiceError(refused('agent stream', call.getPeer(), err))),
      );
    },
    join: unary<JoinRequest>('join', async (call) => {
      const out = await deps.authority.join(call.request.secret, call.request.csrPem, (node) => deps.view.nodes.has(nameKey(node)) || deps.view.alive.has(nameKey(node)));
      deps.log.info('node joined', { peer: call.getPeer() });
      return out;
    }),
    getCaBundle: (_call: ServerUnaryCall<unknown, CaBundle>, callback: sendUnaryData<CaBundle>) => {
      try {
        callback(null, { caPem: deps.authority.rootsPem() });
      } catch (err) {
        callback(toServiceError(err));
      }
    },
    renew: unary<RenewRequest>('certificate renewal', async (call) => {
      const caller = await deps.authority.identify(peerCertificate(call), ['node']);
      return deps.authority.renew(caller, call.request.csrPem);
    }),
  };
}

