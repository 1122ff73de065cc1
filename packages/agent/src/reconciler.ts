import {
  buildZone,
  desiredHost,
  desiredHostRules,
  desiredSandboxRules,
  parseIPv4,
  planOverlays,
  parseListeners,
  projectApplied,
  publishedHere,
  serviceTraffic,
  type ActualHost,
  type DesiredHost,
  type HostContext,
  type LastReconcile,
  type NftTable,
  type PluggedVeth,
  type ServiceTraffic,
} from '@ctnet/core';
import type { PolicyApplier } from './nft/policy.js';
import type { DnsServer } from './dns/server.js';
import { applyOps, readActual } from './netlink/kernel.js';
import { parseLinks } from './netlink/parse.js';
import type { CommandRunner } from './netlink/runner.js';
import { ParentMissingError } from './sandbox/attachment.js';
import type { SandboxRecord, SandboxRuntime } from './sandbox/runtime.js';
import type { ObservedState, Supervisor } from './sandbox/supervisor.js';
import type { LocalState } from './state.js';
import type { AgentMetrics } from './metrics.js';
import type { Logger } from './log.js';

/**
 * Makes the kernel match the desired state: read the kernel back, diff (pure), apply the plan
 * in one batch per tool, then the sandboxes. One run at a time; requests that arrive during
 * a run coalesce into one more run. A periodic resync runs the same thing, so anything changed
 * behind our back (an entry or device deleted by hand) is repaired, and counted as drift.
 */
export interface Reconciler {
  request(reason: 'change' | 'resync' | 'start'): void;
  /** Resolves when no run is pending or in progress. */
  idle(): Promise<void>;
  readonly lastError: string | undefined;
  /** The last run's trouble with the host itself (overlays, forwarding, the host's rules), not with one sandbox. */
  readonly hostError: string | undefined;
  /** Cheap check between runs: did a process we saw running end? Then run now. */
  poll(): void;
  /**
   * Runs fn alone (no run in progress, none started until it ends), ahead of pending runs: a
   * local caller (the CNI plugin) programs one sandbox at once instead of waiting for the
   * next run. What fn changed in the kernel is read back by the next run.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** What a run would plan from now, for diag (undefined before the first state). */
  wanted(): { desired: DesiredHost; hostTable: NftTable; sandboxTables: readonly { netns: string; table: NftTable }[] } | undefined;
  readonly lastRun: LastReconcile | undefined;
  /** Drift repaired since this agent started. */
  readonly driftRepairs: number;
}

export function createReconciler(deps: {
  runner: CommandRunner;
  state: LocalState;
  host: Omit<HostContext, 'vxlanPort'>;
  netnsPrefix: string;
  sandboxes: SandboxRuntime;
  dns: DnsServer;
  hostUpstreams: readonly string[];
  /** Addresses the resolver serves on besides the gateways (the Docker containers' resolver, on lo). */
  extraDnsAddrs?: readonly string[];
  metrics: AgentMetrics;
  log: Logger;
  supervisor: Supervisor;
  /** ctnet's nftables tables (host and sandboxes). */
  policy: PolicyApplier;
  onApplied(revision: number): void;
  /** Problems of this host with networks (network id -> what is wrong), after each run; empty when none. */
  onProblems?(problems: ReadonlyMap<string, string>): void;
  /** Every local container's state after each run (the caller sends what changed). */
  onStates(states: readonly ObservedState[]): void;
  /** A run ended (clean or not): the revision it planned from, and the sandboxes it could not make (name -> why). */
  onRunDone?(revision: number, failed: ReadonlyMap<string, string>): void;
  /**
   * Sandboxes made ahead of the state (the CNI plugin's, before the stream brings their
   * container): container ids and namespaces no run may take for leftovers.
   */
  pending?(): { readonly ids: ReadonlySet<string>; readonly netns: ReadonlySet<string>; readonly removed: ReadonlySet<string> };
  /**
   * Docker's veth pairs made ahead of the state (the plugin's Join, in an exclusive job): kept
   * on their bridge and never taken for stale until the state shows their endpoint.
   */
  plugged?(): readonly PluggedVeth[];
}): Reconciler {
  let running: Promise<void> | undefined;
  let pending: 'change' | 'resync' | 'start' | undefined;
  let lastError: string | undefined;
  let hostError: string | undefined;
  // What the kernel holds after our last clean apply. Change-triggered runs plan against it;
  // resyncs (and any run after a failure) read the kernel back instead.
  let believed: ActualHost | undefined;
  let watched: SandboxRecord[] = []; // processes seen running at the end of the last run
  let dueTimer: NodeJS.Timeout | undefined;
  let forwardingOn = false; // IPv4 forwarding seen or set by this agent
  let lastRun: LastReconcile | undefined;
  let driftRepairs = 0; // since this agent started (diag; the metric counts the same)

  /** What a run plans from: the desired host (with Docker's veths made ahead) and its context. */
  const wantedNow = (): { ctx: HostContext; traffic: ServiceTraffic; desired: DesiredHost } => {
    const ctx: HostContext = { ...deps.host, vxlanPort: deps.state.vxlanPort };
    const traffic = serviceTraffic(deps.state); // once per run: DNS-like rules, the mesh, VIP maps
    return { ctx, traffic, desired: withPlugged(desiredHost(deps.state, ctx, deps.netnsPrefix, traffic), deps.plugged?.() ?? []) };
  };
  const hostTable = (ctx: HostContext, desired: DesiredHost, traffic: ServiceTraffic): NftTable =>
    desiredHostRules(deps.state, ctx, desired.overlays, { traffic, held, ...(deps.extraDnsAddrs?.[0] && { containerResolver: deps.extraDnsAddrs[0] }) });
  const sandboxTables = (desired: DesiredHost, traffic: ServiceTraffic) =>
    desired.sandboxes
      .filter((sb) => sb.ownsNetns && sb.netns !== '')
      .map((sb) => ({ netns: sb.netns, containerId: sb.container.id, table: desiredSandboxRules(sb, traffic.vips) }));

  const once = async (reason: 'change' | 'resync' | 'start'): Promise<void> => {
    const { state, metrics, log } = deps;
    if (!state.hasSnapshot) return; // nothing known yet: never act on an empty picture (never flush)
    const revision = state.revision;
    // Taken with the state this run plans from (synchronously, before desiredHost).
    const ahead = deps.pending?.() ?? { ids: new Set<string>(), netns: new Set<string>(), removed: new Set<string>() };
    const stop = metrics.reconcileSeconds.startTimer();
    const began = Date.now();
    const { ctx, traffic, desired } = wantedNow();
    const errors: string[] = [];
    let hostErrors = -1; // how many of errors are the host's own: all of them until the sandbox step
    try {
      const actual = reason === 'change' && believed ? believed : await readActual(deps.runner);
      believed = undefined;
      const plan = planOverlays(desired, actual);
      // The resolver follows the same state. Names that only go away are withdrawn before the
      // kernel is touched (never answer with what is being torn down); names that arrive wait
      // until their FDB and neighbour entries exist here, so an answer is reachable at once.
      const setZone = (): void => {
        const dnsOf = new Map<number, readonly string[]>();
        const withDns = new Map([...state.containers.values()].filter((c) => c.dns.length > 0).map((c) => [c.id, c.dns]));
        for (const ep of state.endpoints.values()) {
          const dns = ep.container ? withDns.get(ep.container) : undefined;
          if (dns) dnsOf.set(parseIPv4(ep.ip), dns);
        }
        deps.dns.setZone(buildZone(state, deps.host.node), (source) => dnsOf.get(source) ?? deps.hostUpstreams);
      };
      const zoneSet = !plan.some((op) => op.op === 'fdb-replace' || op.op === 'neigh-replace');
      if (zoneSet) setZone();
      let clean = true;
      if (plan.length > 0) {
        const result = await applyOps(deps.runner, plan);
        clean = result.failed.length === 0;
        for (const op of plan) metrics.opsApplied.inc({ op: op.op });
        for (const f of result.failed) {
          metrics.opsFailed.inc({ op: f.op.op });
          const target = 'name' in f.op ? f.op.name : 'dev' in f.op ? f.op.dev : '';
          // A VXLAN device cannot come up while something else holds its UDP port (a known
          // Swarm pain, where it fails silently): name the port and the way out.
          if (/address already in use/i.test(f.error) && target.startsWith('ctvx-')) {
            errors.push(
              `VXLAN port ${ctx.vxlanPort} is already in use on this host (another process or VXLAN device holds UDP ${ctx.vxlanPort}), so ${target} cannot come up; free the port, or run the cluster with another ctmgr --vxlan-port`,
            );
          } else errors.push(`${f.op.op} ${target}: ${f.error}`);
        }
        if (reason === 'resync') {
          metrics.driftRepairs.inc(plan.length);
          driftRepairs += plan.length;
          log.warn('repaired drift in the kernel', { ops: plan.length, first: plan[0]?.op ?? '' });
        }
      }
      if (clean) believed = projectApplied(desired, actual);
      if (!zoneSet) setZone();
      // Traffic policy: the host's table now (bridges are named, not needed); the sandboxes'
      // after the sandbox step below, as their namespaces must exist.
      const thorough = reason !== 'change';
      if (thorough || !forwardingOn) {
        // Forwarding is what published ports, the routing mesh and egress stand on: on the
        // first run (a 'change' when the first state arrives) and on every resync after.
        const fwd = await deps.runner.run('sh', ['-c', 'test "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 || echo 1 > /proc/sys/net/ipv4/ip_forward']);
        if (fwd.exitCode !== 0) errors.push(`enabling IPv4 forwarding: ${fwd.stderr.trim()}`);
        else forwardingOn = true;
      }
      await checkHeldPorts(thorough, traffic);
      const hostRules = await deps.policy.syncHost(hostTable(ctx, desired, traffic), thorough);
      if (hostRules.applied) metrics.opsApplied.inc({ op: 'nft-host' });
      if (hostRules.drift) {
        metrics.driftRepairs.inc();
        driftRepairs++;
        log.warn('repaired drift in the host nftables table');
      }
      // Listeners after the kernel step: the gateways exist now.
      await deps.dns.sync([...desired.overlays.map((o) => o.gatewayCidr.split('/')[0]!), ...(deps.extraDnsAddrs ?? [])]);
      hostErrors = errors.length;
      const existing = await deps.sandboxes.listNetns();
      const records = await deps.sandboxes.records();
      const links =
        desired.sandboxes.length > 0 || existing.size > 0
          ? new Set(parseLinks((await deps.runner.run('ip', ['-j', 'link', 'show'])).stdout).map((l) => l.name))
          : new Set<string>();
      // Containers that are gone first (sharers before the owners of their sandboxes), then
      // namespaces of ours nothing accounts for, then what should exist.
      const wantedIds = new Set([...desired.sandboxes.map((s) => s.container.id), ...ahead.ids]);
      const gone = records.filter((r) => !wantedIds.has(r.containerId)).sort((a, b) => Number(a.ownsNetns) - Number(b.ownsNetns));
      // The sandbox step adds and removes veths behind the projection: plan the next run
      // against the kernel again whenever it did anything.
      let sandboxesChanged = gone.length > 0;
      for (const r of gone) await deps.sandboxes.remove(r);
      const accounted = new Set([...desired.sandboxes.map((s) => s.netns), ...ahead.netns, ...records.filter((r) => wantedIds.has(r.containerId)).map((r) => r.netns)]);
      for (const ns of existing) {
        if (accounted.has(ns)) continue;
        sandboxesChanged = true;
        await deps.sandboxes.removeOrphan(ns);
      }
      // Owners before sharers: a container:X sandbox needs X's namespace.
      const order = desired.sandboxes.filter((sb) => !ahead.removed.has(sb.container.id)).sort((a, b) => Number(b.ownsNetns) - Number(a.ownsNetns));
      const byName = new Map(records.filter((r) => wantedIds.has(r.containerId)).map((r) => [r.name, r]));
      const tables = new Map(sandboxTables(desired, traffic).filter((t) => !ahead.removed.has(t.containerId)).map((t) => [t.netns, t.table]));
      const failed = new Set<string>();
      failedBy = new Map();
      // A macvlan network whose parent this host lacks: its sandboxes here cannot be plumbed;
      // the host says so (node inspect, the network's status) and everything else goes on.
      const problems = new Map<string, string>();
      for (const sb of desired.sandboxes) {
        for (const i of sb.interfaces) {
          if (i.kind !== 'macvlan' || links.has(i.parent)) continue;
          const net = state.networks.get(i.networkId);
          problems.set(
            i.networkId,
            `parent interface ${i.parent} of macvlan network ${net?.name ?? i.networkId} does not exist on node ${deps.host.node}; create it there, or recreate the network with -o parent= naming an interface every host has`,
          );
        }
      }
      deps.onProblems?.(problems);
      const said = [...problems.values()].sort().join('\n');
      if (said !== lastProblems && said !== '') log.warn('network problems on this host', { problems: said });
      lastProblems = said;
      for (const sb of order) {
        const began = performance.now();
        const rules = tables.get(sb.netns);
        await deps.sandboxes.ensure(sb, existing, links, thorough, rules).then(
          (r) => {
            if (r.rulesApplied && rules) deps.policy.believe(sb.netns, rules);
            if (r.record) byName.set(sb.container.name, r.record);
            if (r.plumbed) sandboxesChanged = true;
            if (r.started) log.info('sandbox started', { name: sb.container.name, netns: sb.netns || '(host)', ms: Math.round(performance.now() - began) });
          },
          (err: unknown) => {
            sandboxesChanged = true;
            failed.add(sb.netns);
            const parent = err instanceof ParentMissingError ? problems.get(err.itf.networkId) : undefined;
            failedBy.set(sb.container.name, parent ?? (err instanceof Error ? err.message : String(err)));
            // A missing parent is the user's to fix, reported through the container and the node:
            // the run is as complete as it can be (the state is still acked, so this host does
            // not look stuck to everyone else); any other failure is retried.
            if (!parent) errors.push(`sandbox ${sb.container.name}: ${String(err)}`);
          },
        );
      }
      const sandboxRules = await deps.policy.syncSandboxes(
        [...tables].filter(([netns]) => !failed.has(netns)).map(([netns, table]) => ({ netns, table })),
        thorough,
      );
      if (sandboxRules.applied > 0) metrics.opsApplied.inc({ op: 'nft-sandbox' }, sandboxRules.applied);
      if (sandboxRules.drift > 0) {
        metrics.driftRepairs.inc(sandboxRules.drift);
        driftRepairs += sandboxRules.drift;
        log.warn('repaired drift in sandbox nftables tables', { sandboxes: sandboxRules.drift });
      }
      errors.push(...sandboxRules.errors);
      if (sandboxesChanged) believed = undefined;
      metrics.sandboxes.set(desired.sandboxes.length);
      await supervise(desired.sandboxes, byName);
    } catch (err) {
      errors.push(err instanceof Error ? err.message : String(err));
    }
    stop();
    lastRun = { at: new Date(began).toISOString(), reason, ms: Date.now() - began, ...(errors.length > 0 && { error: errors.join('; ') }) };
    deps.onRunDone?.(revision, failedBy);
    metrics.reconciles.inc({ reason, result: errors.length ? 'error' : 'ok' });
    const own = hostErrors < 0 ? errors : errors.slice(0, hostErrors);
    hostError = own.length > 0 ? own.join('; ') : undefined;
    if (errors.length) {
      lastError = errors.join('; ');
      log.error('reconcile incomplete; will retry at the next change or resync', { errors: lastError });
      return;
    }
    lastError = undefined;
    metrics.appliedRevision.set(revision);
    deps.onApplied(revision);
  };

  /**
   * A port published here that a process of the host already listens on is left to that
   * process (Docker would refuse to start the container): the container's status says who
   * holds it, and the log names it. Looked up (one `ss`) when the published set changes and
   * at every resync.
   */
  let held = new Set<string>();
  let heldBy = new Map<string, string>(); // container name -> why its port is not published
  let failedBy = new Map<string, string>(); // container name -> why its sandbox could not be made
  let lastProblems = ''; // logged when they change, not at every run
  let warned = new Set<string>();
  let checkedFor = '';
  const checkHeldPorts = async (thorough: boolean, traffic: ServiceTraffic): Promise<void> => {
    const published = publishedHere(deps.state, deps.host.node, traffic);
    const key = JSON.stringify(published);
    if (!thorough && key === checkedFor) return;
    checkedFor = key;
    const said = warned;
    warned = new Set();
    held = new Set();
    heldBy = new Map();
    if (published.length === 0) return;
    const res = await deps.runner.run('ss', ['-Hlntup']);
    const listeners = res.exitCode === 0 ? parseListeners(res.stdout) : [];
    for (const p of published) {
      const l = listeners.find((x) => x.protocol === p.protocol && x.port === p.port);
      if (!l) continue;
      const why = `port ${p.port}/${p.protocol} on node ${deps.host.node} is held by ${l.process}, so ${p.holder} is not published there; stop that process or publish on another port`;
      held.add(`${p.protocol}/${p.port}`);
      if (p.container) heldBy.set(p.container, why);
      if (!said.has(why)) deps.log.warn(why); // once, not at every resync
      warned.add(why);
    }
  };

  /** Restarts tasks whose backoff ran out, reports every container's state, arms the next restart. */
  const supervise = async (sandboxes: Parameters<Supervisor['evaluate']>[0], byName: Map<string, SandboxRecord>): Promise<void> => {
    const running = (r: SandboxRecord) => deps.sandboxes.running(r);
    let sup = deps.supervisor.evaluate(sandboxes, byName, running, Date.now());
    if (sup.restart.length > 0) {
      for (const { sandbox, record } of sup.restart) {
        const next = await deps.sandboxes.restart(sandbox, record);
        byName.set(sandbox.container.name, next);
        deps.metrics.taskRestarts.inc();
        deps.log.info('task restarted', { name: sandbox.container.name, restarts: next.restarts ?? 0 });
      }
      sup = deps.supervisor.evaluate(sandboxes, byName, running, Date.now());
    }
    const up = new Set(sup.states.filter((s) => s.status.state === 'running').map((s) => s.name));
    watched = [...byName.values()].filter((r) => up.has(r.name));
    deps.onStates(
      heldBy.size === 0 && failedBy.size === 0
        ? sup.states
        : sup.states.map((st) => {
            const failed = failedBy.get(st.name);
            if (failed !== undefined && st.status.state === 'starting') return { ...st, status: { ...st.status, state: 'failed', message: failed } };
            return heldBy.has(st.name) ? { ...st, status: { ...st.status, message: heldBy.get(st.name)! } } : st;
          }),
    );
    if (dueTimer) clearTimeout(dueTimer);
    dueTimer = undefined;
    if (sup.nextDue !== undefined) {
      dueTimer = setTimeout(() => request('change'), Math.max(0, sup.nextDue - Date.now()));
      dueTimer.unref();
    }
  };

  const request = (reason: 'change' | 'resync' | 'start'): void => {
    // A change outranks a resync: drift is only what a resync finds with nothing changed.
    pending = pending === 'change' || reason === 'change' ? 'change' : reason;
    running ??= loop();
  };

  const jobs: (() => Promise<void>)[] = [];
  const loop = async (): Promise<void> => {
    while (pending || jobs.length > 0) {
      while (jobs.length > 0) await jobs.shift()!();
      if (!pending) break;
      const reason = pending;
      pending = undefined;
      await once(reason);
    }
    running = undefined;
  };

  return {
    request,
    exclusive<T>(fn: () => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        jobs.push(async () => {
          try {
            resolve(await fn());
          } catch (err) {
            reject(err);
          }
          // `believed` stays: a veth made here is simply not in it (nothing plans against it),
          // and one removed here that it still holds costs a delete of a missing device, which
          // counts as done.
          
        });
        running ??= loop();
      });
    },
    poll() {
      if (watched.some((r) => !deps.sandboxes.running(r))) request('change');
    },
    async idle() {
      while (running) await running;
    },
    get lastError() {
      return lastError;
    },
    get hostError() {
      return hostError;
    },
    wanted() {
      if (!deps.state.hasSnapshot) return undefined;
      const { ctx, traffic, desired } = wantedNow();
      return { desired, hostTable: hostTable(ctx, desired, traffic), sandboxTables: sandboxTables(desired, traffic).map(({ netns, table }) => ({ netns, table })) };
    },
    get lastRun() {
      return lastRun;
    },
    get driftRepairs() {
      return driftRepairs;
    },
  };
}

/** The desired host with Docker's veths made ahead of the state (each once). */
function withPlugged(desired: DesiredHost, ahead: readonly PluggedVeth[]): DesiredHost {
  if (ahead.length === 0) return desired;
  const known = new Set((desired.plugged ?? []).map((p) => p.hostVeth));
  return { ...desired, plugged: [...(desired.plugged ?? []), ...ahead.filter((p) => !known.has(p.hostVeth))] };
}
