import type { ManagerConfig } from '@ctnet/core';
import type { ClusterConfig, Store } from '@ctnet/store';
import type { ClusterView } from './view.js';
import type { Allocator } from './allocator.js';
import type { ManagerMetrics } from './metrics.js';
import type { Orchestrator } from './orchestrator.js';
import type { Authority } from './authority.js';

/** Injected time, so grace periods and timestamps can be driven by tests. */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export { createLogger, type Logger } from '@ctnet/core';
import type { Logger } from '@ctnet/core';

/** The agent streams connected to this manager, by node key: the way to ask an agent something. */
export interface AgentSessions {
  requestLogs(node: string, container: string, tailBytes: number): Promise<Buffer>;
  /** The node's diagnosis as JSON (core's HostDiagnosis), from its agent. */
  requestDiag(node: string): Promise<string>;
  /**
   * The newest revision the node acked on a stream to this manager (0 without one): fresher
   * than the persisted ack, which is written at most every 200 ms.
   */
  ackedHere(node: string): number;
}

/** Everything a handler may use. Handlers are plain functions of (deps, request). */
export interface ManagerDeps {
  readonly config: ManagerConfig;
  readonly cluster: ClusterConfig;
  readonly store: Store;
  readonly view: ClusterView;
  readonly allocator: Allocator;
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics: ManagerMetrics;
  readonly sessions: AgentSessions;
  readonly orchestrator: Pick<Orchestrator, 'kick' | 'expect' | 'pendingReason'>;
  /** The cluster CA: who is calling, and certificates for nodes and admins. */
  readonly authority: Authority;
}
