import type { ManagerConfig } from '@ctnet/core';
import type { ClusterConfig, Store } from '@ctnet/store';
import type { ClusterView } from './view.js';
import type { Allocator } from './allocator.js';
import type { ManagerMetrics } from './metrics.js';

/** Injected time, so grace periods and timestamps can be driven by tests. */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export function createLogger(write: (line: string) => void, component: string): Logger {
  const emit = (level: string, msg: string, fields?: Record<string, unknown>): void => {
    const extra = fields
      ? Object.entries(fields)
          .map(([k, v]) => ` ${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`)
          .join('')
      : '';
    write(`${new Date().toISOString()} ${level} ${component}: ${msg}${extra}\n`);
  };
  return {
    info: (m, f) => emit('INFO', m, f),
    warn: (m, f) => emit('WARN', m, f),
    error: (m, f) => emit('ERROR', m, f),
  };
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
}
