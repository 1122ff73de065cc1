import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { hostVethName, pluggedPeerName, type AgentConfig, type Logger, type PluggedVeth } from '@ctnet/core';
import type { RunWaits } from '../cni/waits.js';
import type { Reconciler } from '../reconciler.js';
import type { ManagerCalls } from '../manager-calls.js';
import type { AgentMetrics } from '../metrics.js';
import type { CommandRunner } from '../netlink/runner.js';
import type { LocalState } from '../state.js';
import { loadDockerBindings } from './bindings.js';
import { createDockerEngine } from './engine.js';
import { createDockerPlugin } from './plugin.js';
import { serveDockerPlugin } from './socket.js';
import { createDockerSync } from './sync.js';

const linkExists = (name: string): boolean => existsSync(`/sys/class/net/${name}`);

/**
 * The Docker side of the agent: the resolver address on lo, the plugin socket dockerd calls,
 * and the sync that keeps this host's Docker in step with the cluster.
 */
export async function serveDocker(deps: {
  config: AgentConfig;
  underlayMtu: number;
  state: LocalState;
  runner: CommandRunner;
  manager: ManagerCalls;
  runs: RunWaits;
  /** Plugging and unplugging run as exclusive jobs: no reconcile run is halfway through meanwhile. */
  reconciler: Pick<Reconciler, 'exclusive'>;
  /** Docker's veths made ahead of the state, which runs keep (the reconciler's plugged()). */
  ahead: Map<string, PluggedVeth>;
  connected(): boolean;
  onProblems(p: ReadonlyMap<string, string>): void;
  onForeignNetworks(n: ReadonlyMap<string, string>): void;
  metrics: AgentMetrics;
  log: Logger;
}): Promise<{ request(): void; close(): Promise<void> }> {
  const { config, state, runner, log } = deps;
  // Docker's containers forward what their own resolver does not know to this address
  // (daemon.json "dns"); each network's Join routes it through the network's gateway.
  const lo = await runner.run('ip', ['addr', 'replace', `${config.dockerDns}/32`, 'dev', 'lo']);
  if (lo.exitCode !== 0) throw new Error(`cannot put the Docker resolver address ${config.dockerDns} on lo: ${lo.stderr.trim()}`);
  const bindings = await loadDockerBindings(join(config.dataDir, 'docker.json'));
  const engine = createDockerEngine(config.dockerHost);
  const ready = (): boolean => state.hasSnapshot && deps.connected();
  const ip = async (lines: string[], what: string): Promise<void> => {
    const r = await runner.run('ip', ['-batch', '-'], { input: `${lines.join('\n')}\n` });
    if (r.exitCode !== 0) throw new Error(`${what}: ${r.stderr.trim()}`);
  };
  const unplug = (endpointId: string): Promise<void> =>
    deps.reconciler.exclusive(async () => {
      deps.ahead.delete(hostVethName(endpointId));
      const gone = [hostVethName(endpointId), pluggedPeerName(endpointId)].filter(linkExists);
      if (gone.length > 0) await ip(gone.slice(0, 1).map((n) => `link del ${n}`), 'removing a Docker endpoint\'s veth');
    });
  const sync = createDockerSync({
    node: config.nodeName,
    state,
    engine,
    bindings,
    manager: deps.manager,
    ready,
    unplug,
    onProblems: deps.onProblems,
    onForeignNetworks: deps.onForeignNetworks,
    now: () => Date.now(),
    log,
  });
  const plugin = createDockerPlugin({
    node: config.nodeName,
    underlayMtu: deps.underlayMtu,
    dnsAddr: config.dockerDns,
    state,
    manager: deps.manager,
    bindings,
    ready,
    waitUntil: (check, ms, what) => deps.runs.until(ms, `timed out waiting for ${what}`, async () => (check() ? true : undefined)).then(() => undefined),
    bridgeExists: linkExists,
    plug(ep) {
      // Alone (a run that planned before this pair existed must not find it afterwards and take
      // it for stale), and recorded ahead of the state, so later runs keep it.
      return deps.reconciler.exclusive(async () => {
        const host = hostVethName(ep.id);
        const peer = pluggedPeerName(ep.id);
        // A repeated Join (Docker retried): a fresh pair, the peer is what Docker moves in.
        const stale = [host, peer].filter(linkExists).map((n) => `link del ${n}`);
        await ip(
          [...stale.slice(0, 1), `link add ${host} mtu ${ep.mtu} type veth peer name ${peer} mtu ${ep.mtu} address ${ep.mac}`, `link set ${host} master ${ep.bridge} up`],
          `making the veth pair of a Docker endpoint on ${ep.bridge}`,
        );
        deps.ahead.set(host, { endpointId: ep.id, networkId: ep.networkId, hostVeth: host, bridge: ep.bridge, mtu: ep.mtu });
        return peer;
      });
    },
    unplug,
    adopt: (id) => sync.adopt(id),
    log,
  });
  const server = await serveDockerPlugin(config.dockerPluginDir, plugin, log, (method, ok, seconds) =>
    deps.metrics.dockerCallSeconds.observe({ method, result: ok ? 'ok' : 'refused' }, seconds),
  );
  sync.request();
  return {
    request: () => sync.request(),
    async close() {
      sync.stop();
      await server.close();
    },
  };
}
