import { randomBytes } from 'node:crypto';
// "ct" + 6 hex digits: unique per run, and short enough for derived interface names.
import { PREFIX_RE } from './sweep.mjs';

/**
 * The lab's shape as data: namespace names, addresses and the `ip` commands that build it.
 * Pure (apart from randomPrefix), so the naming and address rules are unit-tested without root.
 *
 *   <p>-ul   the underlay "switch": bridge br0, one veth port per node, named after the node
 *   <p>-m    the manager, eth0 = 192.168.X.254/24
 *   <p>-hN   host N,      eth0 = 192.168.X.N/24
 *   <p>-sN-* sandboxes the agent on hN creates (CTNET_NETNS_PREFIX=<p>-sN-); the lab only deletes them
 *
 * No namespace gets a default route and nothing is attached to the root namespace: the
 * only way in or out is `ip netns exec`.
 */

export { PREFIX_RE };
export const MANAGER_PORT = 4700;
export const MANAGER_HTTP = '127.0.0.1:4701';
export const AGENT_HTTP = '127.0.0.1:4702';
export const MAX_HOSTS = 200;
/** Linux IFNAMSIZ - 1. */
export const IFNAME_MAX = 15;

export interface LabNode {
  /** "m" for the manager, "h1".."hN" for hosts; also the name of its port on br0. */
  readonly name: string;
  /** Network namespace name, <prefix>-<name>. */
  readonly ns: string;
  /** Underlay address (no prefix length). */
  readonly addr: string;
}

export interface LabHost extends LabNode {
  /**
   * CTNET_NETNS_PREFIX for this host's agent: "<prefix>-s<N>-". Per host because every host
   * sees the same /run/netns (as containers on one machine do), so an agent that removes
   * stale sandboxes by prefix must not match another host's.
   */
  readonly sandboxPrefix: string;
}

export interface LabPlan {
  readonly prefix: string;
  /** The X in 192.168.X.0/24. */
  readonly subnetOctet: number;
  readonly underlayNs: string;
  readonly manager: LabNode;
  readonly hosts: readonly LabHost[];
  /** Every agent's CTNET_NETNS_PREFIX starts with this ("<prefix>-s"). */
  readonly sandboxPrefix: string;
  /** gRPC address of the manager as the agents see it. */
  readonly managerAddr: string;
}

/** One `ip` invocation, run as `ip -n <ns> <args...>` (or `ip <args...>` for netns add/del). */
export interface IpCommand {
  readonly ns?: string;
  readonly args: readonly string[];
}

export function randomPrefix(): string {
  return `ct${randomBytes(3).toString('hex')}`;
}

export function planLab(prefix: string, hostCount: number): LabPlan {
  if (!PREFIX_RE.test(prefix)) throw new Error(`lab prefix "${prefix}" must be "ct" and 6 lowercase hex digits, e.g. ${randomPrefix()}`);
  if (!Number.isInteger(hostCount) || hostCount < 1 || hostCount > MAX_HOSTS) {
    throw new Error(`lab hosts must be an integer from 1 to ${MAX_HOSTS}, got ${hostCount}`);
  }
  // 192.168.200-250, picked from the prefix so two labs side by side are told apart in tcpdump.
  const subnetOctet = 200 + (parseInt(prefix.slice(2, 4), 16) % 51);
  const node = (name: string, last: number): LabNode => ({ name, ns: `${prefix}-${name}`, addr: `192.168.${subnetOctet}.${last}` });
  const manager = node('m', 254);
  const hosts = Array.from({ length: hostCount }, (_, i): LabHost => ({ ...node(`h${i + 1}`, i + 1), sandboxPrefix: `${prefix}-s${i + 1}-` }));
  const plan: LabPlan = {
    prefix,
    subnetOctet,
    underlayNs: `${prefix}-ul`,
    manager,
    hosts,
    sandboxPrefix: `${prefix}-s`,
    managerAddr: `${manager.addr}:${MANAGER_PORT}`,
  };
  for (const n of [plan.underlayNs, manager.ns, ...hosts.map((h) => h.ns)]) {
    if (n.length > IFNAME_MAX) throw new Error(`lab namespace name "${n}" is longer than ${IFNAME_MAX} characters`);
  }
  return plan;
}

/** The commands that build the underlay and attach one node; run in order. */
export function nodeCommands(plan: LabPlan, node: LabNode): IpCommand[] {
  return [
    { args: ['netns', 'add', node.ns] },
    { ns: node.ns, args: ['link', 'set', 'dev', 'lo', 'up'] },
    // Keywords spelled out ("name", "dev"): ip matches abbreviations, so a bare "m" would be read as "mtu".
    // Created inside the underlay namespace, the peer moved straight into the node: the root
    // namespace never sees either end.
    { ns: plan.underlayNs, args: ['link', 'add', 'name', node.name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.ns] },
    { ns: plan.underlayNs, args: ['link', 'set', 'dev', node.name, 'master', 'br0', 'up'] },
    { ns: node.ns, args: ['addr', 'add', `${node.addr}/24`, 'dev', 'eth0'] },
    { ns: node.ns, args: ['link', 'set', 'dev', 'eth0', 'up'] },
  ];
}

export function underlayCommands(plan: LabPlan): IpCommand[] {
  return [
    { args: ['netns', 'add', plan.underlayNs] },
    { ns: plan.underlayNs, args: ['link', 'set', 'dev', 'lo', 'up'] },
    // STP off (the default) so a port forwards as soon as it is up: setLinkUp takes effect at once.
    { ns: plan.underlayNs, args: ['link', 'add', 'name', 'br0', 'type', 'bridge', 'stp_state', '0'] },
    { ns: plan.underlayNs, args: ['link', 'set', 'dev', 'br0', 'up'] },
  ];
}

export function ipArgv(cmd: IpCommand): string[] {
  return cmd.ns === undefined ? [...cmd.args] : ['-n', cmd.ns, ...cmd.args];
}
