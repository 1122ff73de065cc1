import type { AgentConfig, Logger } from '@ctnet/core';
import type { ManagerCalls } from '../manager-calls.js';
import type { CommandRunner } from '../netlink/runner.js';
import type { Reconciler } from '../reconciler.js';
import { netnsProblem, parseNamespaceInterfaces } from '../sandbox/attachment.js';
import type { SandboxRuntime } from '../sandbox/runtime.js';
import type { LocalState } from '../state.js';
import type { DirectAttach } from './direct.js';
import { createCniHandler } from './handler.js';
import { serveCniSocket } from './socket.js';
import type { RunWaits } from './waits.js';

/** The agent's CNI socket, its handler wired to this agent's state, managers and sandboxes. */
export function serveCni(deps: {
  config: AgentConfig;
  state: LocalState;
  runner: CommandRunner;
  sandboxes: SandboxRuntime;
  reconciler: Reconciler;
  runs: RunWaits;
  direct: DirectAttach;
  manager: ManagerCalls;
  connected(): boolean;
  log: Logger;
}): Promise<{ close(): Promise<void> }> {
  const { config, state, sandboxes, runs, direct } = deps;
  const handler = createCniHandler({
    node: config.nodeName,
    state,
    manager: deps.manager,
    ready: () => state.hasSnapshot && deps.connected(),
    trouble: () => deps.reconciler.hostError,
    waitAttached: (id, ms) => {
      let seen = false;
      return runs.until(ms, `the attachment was not plumbed on ${config.nodeName} within ${ms / 1000} s`, async () => {
        const c = state.containerById(id);
        if (!c) {
          if (seen) throw new Error('the attachment was removed while waiting for it');
          return undefined; // not streamed here yet
        }
        seen = true;
        const failed = runs.failure(c.name);
        if (failed !== undefined) throw new Error(failed);
        return (await sandboxes.records()).find((r) => r.containerId === id);
      });
    },
    waitUntil: (check, ms, what) => runs.until(ms, `timed out waiting for ${what}`, async () => (check() ? true : undefined)).then(() => undefined),
    attachNow: (claim) => direct.attach(claim),
    dropNow: (id) => direct.drop(id),
    detachNow: (name, release) => direct.detach(name, release),
    isRemoved: (id) => direct.isRemoved(id),
    records: () => sandboxes.records(),
    checkNetns: netnsProblem,
    interfacesAt: async (path) => {
      const res = await deps.runner.run('nsenter', [`--net=${path}`, 'ip', '-d', '-j', 'addr', 'show']);
      if (res.exitCode !== 0) throw new Error(`reading the interfaces in ${path}: ${res.stderr.trim()}`);
      return parseNamespaceInterfaces(res.stdout);
    },
    log: deps.log,
  });
  return serveCniSocket(config.cniSocket, handler, deps.log);
}
