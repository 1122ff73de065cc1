import { createHash } from 'node:crypto';
import {
  CniCode,
  CniError,
  CtnetError,
  ErrorCode,
  cniDnsName,
  cniErrorResult,
  cniResult,
  cniVersionResult,
  hostVethName,
  nameKey,
  parseCidr,
  parseCniCall,
  versionOf,
  type CniCall,
  type Container,
  type Endpoint,
  type Logger,
} from '@ctnet/core';
import { RunContainerRequest, containerFromWire, endpointFromWire, type ContainerDetail } from '@ctnet/proto';
import type { ManagerCalls } from '../manager-calls.js';
import type { LocalState } from '../state.js';
import type { ActualInterface } from '../sandbox/attachment.js';
import type { SandboxRecord } from '../sandbox/runtime.js';

/** What the CNI verbs need of the agent: its state, its managers, and its sandboxes. */
export interface CniDeps {
  readonly node: string;
  readonly state: LocalState;
  readonly manager: ManagerCalls;
  /** The stream to a manager is up and a snapshot has arrived. */
  ready(): boolean;
  /** Why this host cannot program networks right now (not a single sandbox's trouble), if it cannot. */
  trouble(): string | undefined;
  /** Resolves with the record once the local reconcile has plumbed the container; rejects with why it could not, or once it is gone. */
  waitAttached(containerId: string, timeoutMs: number): Promise<SandboxRecord>;
  /** Resolves once check() holds; checked after every reconcile run (and each second). */
  waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void>;
  /** Claims (calls claim) and programs the attachment at once; record undefined when it is left to the next run. */
  attachNow(claim: () => Promise<ContainerDetail>): Promise<{ detail: ContainerDetail; record: SandboxRecord | undefined; error?: unknown }>;
  /** Gives up on an attachment programmed at once (its ADD failed). */
  dropNow(containerId: string): void;
  /** Releases (calls release) and takes out the attachment's interfaces at once, by its ctnet name. */
  detachNow(name: string, release: () => Promise<unknown>): Promise<void>;
  /** Taken out here and not yet gone from the state: not to be taken for a live attachment. */
  isRemoved(containerId: string): boolean;
  records(): Promise<SandboxRecord[]>;
  /** Why the path cannot be attached (not a namespace, this host's own), or undefined when it can. */
  checkNetns(path: string): Promise<string | undefined>;
  /** Which interfaces the namespace at the path holds. */
  interfacesAt(path: string): Promise<Map<string, ActualInterface>>;
  log: Logger;
}

const ATTACH_TIMEOUT_MS = 30_000;
const CONVERGE_TIMEOUT_MS = 30_000;
const CLAIM_TIMEOUT_MS = 5_000;

/**
 * The ctnet container name of a runtime's attachment: stable for its key on its node, so a
 * repeated ADD finds it (runtimes choose container ids per host: the node is part of the key).
 */
export const attachmentName = (node: string, containerId: string, ifname: string): string =>
  `cni-${createHash('sha256').update(`${nameKey(node)}/${containerId}/${ifname}`).digest('hex').slice(0, 16)}`;

/** A manager's refusal as the CNI code a runtime understands. */
function fromCtnet(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof CtnetError) {
    switch (err.code) {
      case ErrorCode.Unavailable:
      case ErrorCode.DeadlineExceeded:
        return new CniError(CniCode.TryAgainLater, err.message, 'the cluster is not reachable from this host right now; try again');
      case ErrorCode.ResourceExhausted:
        return new CniError(CniCode.AddressesExhausted, err.message, 'free addresses (remove containers) or use a network with a larger subnet');
      case ErrorCode.NotFound:
        return new CniError(CniCode.InvalidConfig, err.message, 'the conflist "name" must be a ctnet network (see "ctmgr network ls")');
      default:
        return new CniError(CniCode.Refused, err.message);
    }
  }
  return new CniError(CniCode.IoFailure, err instanceof Error ? err.message : String(err));
}

/** The agent's side of the plugin: one call in (environment and stdin), what to print out. */
export function createCniHandler(deps: CniDeps): (env: Readonly<Record<string, string>>, stdin: string) => Promise<{ ok: boolean; output: string }> {
  /** The live attachment of this key on this node (one taken out and not yet gone from the state does not count). */
  const byKey = (containerId: string, ifname: string): Container | undefined => {
    for (const c of deps.state.containers.values()) {
      if (c.cni && c.cni.containerId === containerId && c.cni.ifname === ifname && nameKey(c.node) === nameKey(deps.node) && !deps.isRemoved(c.id)) return c;
    }
    return undefined;
  };
  const inState = (id: string): boolean => deps.state.containerById(id) !== undefined;
  const byName = (name: string): Container | undefined => deps.state.containers.get(nameKey(name));

  const resultFor = (call: CniCall, c: Container, endpoints: readonly Endpoint[], record: SandboxRecord): Record<string, unknown> => {
    const ep = endpoints[0];
    const net = ep && deps.state.networks.get(ep.networkId);
    if (!ep || !net) throw new CniError(CniCode.TryAgainLater, `the endpoint of ${c.name} is not known here yet`, 'try again');
    const itf = record.interfaces[0];
    return cniResult(call.config.cniVersion, {
      hostVeth: net.driver === 'macvlan' ? '' : hostVethName(ep.id),
      ifname: call.ifname,
      mac: itf?.mac ?? ep.mac,
      sandbox: c.attachNetns ?? call.netns,
      cidr: `${ep.ip}/${parseCidr(net.subnet).prefix}`,
      gateway: net.gateway,
      // As resolverInterface: a macvlan attachment cannot reach its host's resolver (nor 127.0.0.11).
      nameserver: net.driver === 'macvlan' ? '' : net.gateway,
    }, call.config.prevResult);
  };

  /**
   * Every ready node has applied the change: once this host's state shows it (present), its
   * revision is the one to wait for. Polled with backoff, from 5 ms to 50 ms.
   */
  const waitConverged = async (shows: () => boolean): Promise<void> => {
    await deps.waitUntil(shows, CONVERGE_TIMEOUT_MS, 'the change to reach this host');
    const revision = deps.state.revision;
    const deadline = Date.now() + CONVERGE_TIMEOUT_MS;
    for (let wait = 5; ; wait = Math.min(50, Math.round(wait * 1.3))) {
      const { nodes } = await deps.manager.listNodes();
      const behind = nodes.filter((n) => n.status === 'ready' && n.ackedRevision < revision);
      if (behind.length === 0) return;
      if (Date.now() > deadline) {
        throw new CniError(CniCode.TryAgainLater, `nodes ${behind.map((n) => n.node?.name).join(', ')} have not applied revision ${revision} within ${CONVERGE_TIMEOUT_MS / 1000} s`);
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  };

  const add = async (call: CniCall, retried = false): Promise<Record<string, unknown>> => {
    const known = byKey(call.containerId, call.ifname);
    if (known) {
      // A repeated ADD (the runtime retried, or ours timed out): the same attachment, the same result.
      const record = await deps.waitAttached(known.id, ATTACH_TIMEOUT_MS);
      return resultFor(call, known, [...deps.state.endpoints.values()].filter((e) => e.container === known.id), record);
    }
    if (!deps.ready()) throw new CniError(CniCode.TryAgainLater, 'the ctnet agent is not connected to a manager yet', 'try again in a moment; check "ctagent" on this host');
    const nsProblem = await deps.checkNetns(call.netns);
    if (nsProblem) {
      throw new CniError(CniCode.InvalidEnvironment, `CNI_NETNS ${call.netns} ${nsProblem}`, 'pass the path of the container\'s network namespace, e.g. /var/run/netns/NAME or /proc/PID/ns/net');
    }
    const present = await deps.interfacesAt(call.netns).catch(() => {
      throw new CniError(CniCode.InvalidEnvironment, `CNI_NETNS ${call.netns} is not a network namespace`, 'pass the path of the container\'s network namespace');
    });
    if (present.has(call.ifname)) {
      throw new CniError(CniCode.InvalidEnvironment, `CNI_IFNAME ${call.ifname} already exists in ${call.netns}`, 'choose another interface name for this attachment');
    }
    const name = attachmentName(deps.node, call.containerId, call.ifname);
    const dnsName = cniDnsName(call);
    const req = RunContainerRequest.fromPartial({
      name,
      network: call.config.name,
      node: deps.node,
      cmd: ['cni', call.containerId, call.ifname],
      hostname: dnsName || name,
      aliases: dnsName && dnsName !== name ? [dnsName] : [],
      // CNI_ARGS IP=<address>[/prefix], the convention host-local and static honour: a fixed address.
      ip: (call.args.IP ?? '').split('/')[0],
      attachNetns: call.netns,
      cni: { containerId: call.containerId, ifname: call.ifname },
      publish: call.config.portMappings.map((p) => `${p.hostIP ? `${p.hostIP}:` : ''}${p.hostPort}:${p.containerPort}/${p.protocol}`),
    });
    let claimed: Awaited<ReturnType<CniDeps['attachNow']>>;
    try {
      // The reconciler waits while the claim is in flight: a slow manager must not hold it long.
      claimed = await deps.attachNow(() => deps.manager.runContainer(req, CLAIM_TIMEOUT_MS));
    } catch (err) {
      // Two ADDs of one key at once: the second waits for the first's attachment to arrive
      // here, once; a name held by something else is the manager's refusal as it stands.
      if (!retried && err instanceof CtnetError && err.code === ErrorCode.AlreadyExists && err.message.includes(name)) {
        await deps.waitUntil(() => byKey(call.containerId, call.ifname) !== undefined, 5_000, 'the other ADD of this attachment').catch(() => undefined);
        if (byKey(call.containerId, call.ifname)) return add(call, true);
      }
      throw fromCtnet(err); // the claim failed: nothing is held
    }
    const id = claimed.detail.container!.id;
    if (claimed.error !== undefined) {
      await undo(id, name);
      throw fromCtnet(claimed.error);
    }
    try {
      const record = claimed.record ?? (await deps.waitAttached(id, ATTACH_TIMEOUT_MS));
      if (call.config.waitConverged) await waitConverged(() => inState(id));
      return resultFor(call, containerFromWire(claimed.detail.container!), claimed.detail.endpoints.map(endpointFromWire), record);
    } catch (err) {
      await undo(id, name);
      throw fromCtnet(err);
    }
  };

  /** Nothing half-made survives a failed ADD: the address goes back and the interface with it. */
  const undo = async (id: string, name: string): Promise<void> => {
    deps.dropNow(id);
    await deps
      .detachNow(name, () => deps.manager.removeContainer(name))
      .catch((e: unknown) => deps.log.warn('could not undo a failed CNI ADD; DEL or GC will', { name, error: String(e) }));
  };

  /**
   * Releases by the attachment's name, whether or not this host's state shows it yet (an ADD
   * answered ahead of the stream, an agent just restarted): the cluster is asked, then the
   * interfaces go. Nothing anywhere is success, as the spec says.
   */
  const del = async (call: CniCall): Promise<void> => {
    const name = attachmentName(deps.node, call.containerId, call.ifname);
    if (!deps.ready()) {
      const trace = byName(name) !== undefined || (await deps.records()).some((r) => r.name === name);
      if (!trace) return; // nothing of it here; anything the cluster still holds, GC releases
      throw new CniError(CniCode.TryAgainLater, 'the ctnet agent is not connected to a manager; the address cannot be released yet', 'the runtime retries DEL; GC cleans up as well');
    }
    await deps.detachNow(name, () =>
      deps.manager.removeContainer(name).catch((err: unknown) => {
        if (!(err instanceof CtnetError && err.code === ErrorCode.NotFound)) throw fromCtnet(err);
      }),
    );
    // The name is withdrawn where it was served before the runtime goes on.
    if (call.config.waitConverged) await waitConverged(() => byName(name) === undefined);
  };

  const check = async (call: CniCall): Promise<void> => {
    const known = byKey(call.containerId, call.ifname);
    if (!known) throw new CniError(CniCode.UnknownContainer, `no ctnet attachment for container ${call.containerId} interface ${call.ifname}`, 'ADD it first');
    const prev = call.config.prevResult as { ips?: { address?: string }[]; interfaces?: { name?: string; mac?: string; sandbox?: string }[] };
    const want = (prev.interfaces ?? []).find((i) => i.sandbox && i.name === call.ifname);
    const addr = prev.ips?.[0]?.address;
    const actual = (await deps.interfacesAt(call.netns)).get(call.ifname);
    const problems: string[] = [];
    if (!actual) problems.push(`interface ${call.ifname} is missing from ${call.netns}`);
    else {
      if (addr && !actual.addrs.includes(addr)) problems.push(`${call.ifname} has ${actual.addrs.join(', ') || 'no IPv4 address'}, not ${addr}`);
      if (want?.mac && actual.mac.toLowerCase() !== want.mac.toLowerCase()) problems.push(`${call.ifname} has MAC ${actual.mac}, not ${want.mac}`);
    }
    const ep = [...deps.state.endpoints.values()].find((e) => e.container === known.id);
    if (addr && ep && addr.split('/')[0] !== ep.ip) problems.push(`the cluster records ${ep.ip} for this attachment, not ${addr}`);
    if (problems.length > 0) throw new CniError(CniCode.CheckFailed, problems.join('; '), 'DEL and ADD the attachment again (the agent also repairs its own interfaces at its next resync)');
  };

  /**
   * Releases this host's attachments on this configuration's network that the runtime does
   * not list (each network's GC lists only its own). Goes on past a failure and reports them all.
   */
  const gc = async (call: CniCall): Promise<void> => {
    const listed = call.config.validAttachments;
    if (listed === undefined) throw new CniError(CniCode.InvalidConfig, 'GC needs "cni.dev/valid-attachments" (the attachments to keep)', 'pass the list, empty to release everything of this network');
    if (!deps.ready()) throw new CniError(CniCode.TryAgainLater, 'the ctnet agent is not connected to a manager yet', 'try again in a moment');
    const valid = new Set(listed.map((a) => `${a.containerId}/${a.ifname}`));
    const network = nameKey(call.config.name);
    const onNetwork = (c: Container): boolean =>
      [...deps.state.endpoints.values()].some((e) => {
        if (e.container !== c.id) return false;
        const net = deps.state.networks.get(e.networkId);
        return net !== undefined && (nameKey(net.name) === network || net.id === call.config.name);
      });
    const gone = [...deps.state.containers.values()].filter(
      (c) => c.cni && nameKey(c.node) === nameKey(deps.node) && onNetwork(c) && !valid.has(`${c.cni.containerId}/${c.cni.ifname}`),
    );
    const failures: string[] = [];
    for (const c of gone) {
      await deps
        .detachNow(c.name, () =>
          deps.manager.removeContainer(c.name).catch((err: unknown) => {
            if (!(err instanceof CtnetError && err.code === ErrorCode.NotFound)) throw err;
          }),
        )
        .catch((err: unknown) => failures.push(`${c.cni!.containerId}/${c.cni!.ifname}: ${err instanceof Error ? err.message : String(err)}`));
    }
    deps.log.info('CNI GC', { network: call.config.name, released: gone.length - failures.length, failed: failures.length });
    if (failures.length > 0) throw new CniError(CniCode.TryAgainLater, `GC released ${gone.length - failures.length} of ${gone.length} attachments; not: ${failures.join('; ')}`);
  };

  return async (env, stdin) => {
    try {
      const call = parseCniCall(env, stdin);
      switch (call.command) {
        case 'VERSION':
          return { ok: true, output: JSON.stringify(cniVersionResult()) };
        case 'ADD':
          return { ok: true, output: JSON.stringify(await add(call)) };
        case 'DEL':
          await del(call);
          return { ok: true, output: '' };
        case 'CHECK':
          await check(call);
          return { ok: true, output: '' };
        case 'GC':
          await gc(call);
          return { ok: true, output: '' };
        case 'STATUS':
          if (!deps.ready()) throw new CniError(CniCode.NotAvailable, 'the ctnet agent is not connected to a manager: it cannot serve ADD now', 'check "ctagent" on this host and the managers it names');
          if (deps.trouble()) {
            throw new CniError(CniCode.LimitedConnectivity, `this host's network is not fully programmed; existing containers may have limited connectivity: ${deps.trouble()}`, 'see the agent log; it retries at every change and resync');
          }
          return { ok: true, output: '' };
      }
    } catch (err) {
      const e = fromCtnet(err);
      if (e.code !== CniCode.TryAgainLater) deps.log.warn('CNI call refused', { code: e.code, error: e.message });
      return { ok: false, output: JSON.stringify(cniErrorResult(versionOf(stdin), e)) };
    }
  };
}
