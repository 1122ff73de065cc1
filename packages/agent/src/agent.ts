import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatHostPort, type AgentConfig, type Logger, type PluggedVeth } from '@ctnet/core';
import { readHostInfo } from './host-info.js';
import { serveAgentHttp } from './http.js';
import { createAgentMetrics } from './metrics.js';
import type { CommandRunner } from './netlink/runner.js';
import { createPolicyApplier } from './nft/policy.js';
import { createReconciler } from './reconciler.js';
import { controlSocketPath, createDiagnoser, serveControl } from './diag.js';
import { createSandboxRuntime } from './sandbox/runtime.js';
import { createSupervisor } from './sandbox/supervisor.js';
import { createProblemReporter, createStateReporter } from './reporter.js';
import { createLocalState } from './state.js';
import { createDnsServer } from './dns/server.js';
import { nameservers } from './sandbox/files.js';
import { readFile } from 'node:fs/promises';
import { connectToManagers } from './stream.js';
import { loadNodeTls } from './tls.js';
import { createManagerCalls } from './manager-calls.js';
import { serveCni } from './cni/serve.js';
import { waitForRuns } from './cni/waits.js';
import { createDirectAttach } from './cni/direct.js';
import { serveDocker } from './docker/serve.js';

/** Wires a running agent: host facts, the manager link, the reconciler, resync and HTTP. */
export async function startAgent(config: AgentConfig, deps: { runner: CommandRunner; log: Logger; joinToken?: string }): Promise<{ stop(): Promise<void> }> {
  const { runner, log } = deps;
  const host = await readHostInfo(runner, config.advertiseAddr);
  // Identity first: nothing runs on this host until it is a member of the cluster.
  const tls = await loadNodeTls(config, deps.joinToken, log);
  // Who this host is, for `ctagent attach/detach` run later on the same host.
  await mkdir(config.dataDir, { recursive: true });
  await writeFile(join(config.dataDir, 'agent.json'), JSON.stringify({ nodeName: config.nodeName, managers: config.managers.map(formatHostPort) }));
  const metrics = createAgentMetrics();
  const state = createLocalState();
  const supervisor = createSupervisor();
  let reconciler: ReturnType<typeof createReconciler> | undefined;
  const sandboxes = createSandboxRuntime({
    runner,
    dataDir: config.dataDir,
    netnsPrefix: config.netnsPrefix,
    onExit: (name, code, signal) => {
      supervisor.exited(name, code, signal);
      reconciler?.request('change');
    },
  });
  let link: ReturnType<typeof connectToManagers> | undefined;
  const runs = waitForRuns();
  const policy = createPolicyApplier(runner);
  const direct = createDirectAttach({
    state,
    host: { node: config.nodeName, underlayMtu: host.underlayMtu },
    netnsPrefix: config.netnsPrefix,
    sandboxes,
    policy,
    reconciler: () => reconciler!,
  });
  const reporter = createStateReporter((states) => link?.report(states) ?? false);
  const problems = createProblemReporter((p, d) => link?.reportProblems(p, d) ?? false);
  const dockerDns = config.dockerPluginDir ? [config.dockerDns] : [];
  const dns = createDnsServer({ log, ttl: config.dnsTtlSeconds, openTo: dockerDns, onQuery: metrics.dns.query, onAnswered: metrics.dns.answered });
  // The host's problems: the reconciler's and the Docker sync's (a network name Docker has for another driver).
  let hostProblems: ReadonlyMap<string, string> = new Map();
  let dockerProblems: ReadonlyMap<string, string> = new Map();
  const reportProblems = (): void => problems.update(new Map([...dockerProblems, ...hostProblems]));
  const hostUpstreams = nameservers(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
  // Docker's veth pairs made ahead of the state (by the plugin's Join): runs keep them until
  // the state shows their endpoint, then the state does.
  const dockerAhead = new Map<string, PluggedVeth>();
  const pluggedAhead = (): PluggedVeth[] => {
    if (dockerAhead.size === 0) return [];
    const shown = new Set([...state.endpoints.values()].map((e) => e.id));
    for (const [veth, p] of dockerAhead) if (shown.has(p.endpointId)) dockerAhead.delete(veth);
    return [...dockerAhead.values()];
  };
  let appliedRevision = 0;
  reconciler = createReconciler({
    dns,
    hostUpstreams,
    extraDnsAddrs: dockerDns,
    runner,
    state,
    host: { node: config.nodeName, advertiseAddr: config.advertiseAddr, underlayMtu: host.underlayMtu },
    netnsPrefix: config.netnsPrefix,
    sandboxes,
    metrics,
    log,
    supervisor,
    policy,
    pending: () => direct.pending(),
    plugged: pluggedAhead,
    onApplied: (revision) => ((appliedRevision = revision), link?.ack(revision)),
    onStates: (states) => reporter.update(states),
    onProblems: (p) => ((hostProblems = p), reportProblems()),
    onRunDone: (revision, failed) => runs.ran(revision, failed),
  });
  const readLogs = async (name: string, tailBytes: number): Promise<Buffer> => {
    const record = (await sandboxes.records()).find((r) => r.name === name);
    if (!record?.log) throw new Error(`no output recorded for ${name} on node ${config.nodeName}`);
    const file = await open(record.log, 'r');
    try {
      const size = (await file.stat()).size;
      const start = tailBytes > 0 ? Math.max(0, size - tailBytes) : 0;
      const buf = Buffer.alloc(Math.min(size - start, 4 * 1024 * 1024)); // at most 4 MiB per answer
      await file.read(buf, 0, buf.length, size - buf.length);
      return buf;
    } finally {
      await file.close();
    }
  };
  // The HTTP port first: if it is taken, nothing else has started yet and the agent exits cleanly.
  const closeHttp = await serveAgentHttp(config.http, metrics.registry, () =>
    !state.hasSnapshot ? 'no desired state received from a manager yet' : reconciler?.lastError,
  );
  const rec = reconciler;
  const diagnose = createDiagnoser({
    node: config.nodeName,
    runner,
    state,
    reconciler: rec,
    policy,
    sandboxes,
    manager: () => link?.manager(),
    appliedRevision: () => appliedRevision,
  });
  let docker: Awaited<ReturnType<typeof serveDocker>> | undefined;
  link = connectToManagers({
    config,
    host,
    state,
    log,
    metrics,
    tls,
    onState: () => (rec.request('change'), runs.poke(), docker?.request()),
    readLogs,
    diagnose: async () => JSON.stringify(await diagnose()),
    onConnected: () => (reporter.resendAll(), problems.resend()),
  });
  const managerCalls = createManagerCalls(() => link?.manager(), tls);
  const cni = config.cniSocket
    ? await serveCni({ config, state, runner, sandboxes, reconciler: rec, runs, direct, manager: managerCalls, connected: () => link?.manager() !== undefined, log })
    : undefined;
  docker = config.dockerPluginDir
    ? await serveDocker({
        config,
        underlayMtu: host.underlayMtu,
        state,
        runner,
        manager: managerCalls,
        runs,
        reconciler: rec,
        ahead: dockerAhead,
        connected: () => link?.manager() !== undefined,
        onProblems: (p) => ((dockerProblems = p), reportProblems()),
        onForeignNetworks: (n) => problems.updateDocker(n),
        metrics,
        log,
      })
    : undefined;
  // Diagnosis only: an agent whose control socket cannot be made (a path too long for a unix
  // socket, say) still runs, and says why `ctagent diag` will not reach it.
  const closeControl = await serveControl({ path: controlSocketPath(config.dataDir), diagnose, log }).catch((err: unknown) => {
    log.warn('ctagent diag will not reach this agent: its control socket could not be made', { path: controlSocketPath(config.dataDir), error: String(err) });
    return async () => {};
  });
  const resync = setInterval(() => rec.request('resync'), config.resyncIntervalMs);
  // Processes adopted from an earlier agent run give no exit event: look at them often.
  const poll = setInterval(() => rec.poll(), 250);
  log.info('agent running', { node: config.nodeName, advertise: config.advertiseAddr, underlay: `${host.underlayDev} mtu ${host.underlayMtu}` });
  return {
    async stop() {
      clearInterval(resync);
      clearInterval(poll);
      await cni?.close();
      await docker?.close();
      await closeControl();
      managerCalls.close();
      link?.stop();
      tls.stop();
      await rec.idle();
      await dns.close();
      await closeHttp();
    },
  };
}
