import { stat, statfs } from 'node:fs/promises';
import { macvlanTempName, replaceTableScript, type DesiredInterface, type DesiredSandbox, type NftTable } from '@ctnet/core';
import type { CommandRunner } from '../netlink/runner.js';

/**
 * An attachment: a network namespace with ctnet's interfaces, addresses, routes and nftables
 * table in it. The namespace is one the agent made, a process's (`ctagent attach`) or one a
 * runtime handed over by path (CNI_NETNS); a workload (a process the agent starts) may sit on
 * top of it, or not. What to do is planned purely from desired vs actual (planInterfaces), then
 * applied in batches through the command runner, as the overlays are.
 */

/** A macvlan network's parent interface is not on this host: the sandbox cannot be plumbed here. */
export class ParentMissingError extends Error {
  override readonly name = 'ParentMissingError';
  constructor(readonly itf: DesiredInterface) {
    super(`parent interface ${itf.parent} of its macvlan network does not exist on this host`);
  }
}

/** Where a sandbox's namespace comes from. */
export type NamespaceSource = { kind: 'own' } | { kind: 'pid'; pid: number } | { kind: 'path'; path: string };

export const namespaceSource = (sb: DesiredSandbox): NamespaceSource => {
  const c = sb.container;
  if (c.attachNetns) return { kind: 'path', path: c.attachNetns };
  return c.attachPid > 0 ? { kind: 'pid', pid: c.attachPid } : { kind: 'own' };
};

/** NSFS_MAGIC: the file system of namespace files (a bind of one, or /proc/PID/ns/net). */
const NSFS = 0x6e736673;

/** Why a runtime's path cannot be attached, or undefined: a namespace file, and not this host's own namespace. */
export async function netnsProblem(path: string): Promise<string | undefined> {
  const fs = await statfs(path).catch(() => undefined);
  if (!fs) return 'does not exist';
  if (fs.type !== NSFS) return 'is not a network namespace';
  const [it, host] = await Promise.all([stat(path), stat('/proc/self/ns/net')]);
  // The host's own namespace would get a container's address, default route and rules.
  if (it.dev === host.dev && it.ino === host.ino) return "is this host's own network namespace";
  return undefined;
}

/** One interface as the kernel shows it inside a namespace. */
export interface ActualInterface {
  readonly mac: string;
  readonly kind: string; // veth, macvlan, '' (lo and others)
  readonly addrs: readonly string[]; // IPv4 address/prefix
}

/** `ip -d -j addr show` inside a namespace, by interface name. */
export function parseNamespaceInterfaces(json: string): Map<string, ActualInterface> {
  const out = new Map<string, ActualInterface>();
  for (const l of (json.trim() ? JSON.parse(json) : []) as {
    ifname: string;
    address?: string;
    linkinfo?: { info_kind?: string };
    addr_info?: { family: string; local: string; prefixlen: number }[];
  }[]) {
    out.set(l.ifname, {
      mac: l.address ?? '',
      kind: l.linkinfo?.info_kind ?? '',
      addrs: (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
    });
  }
  return out;
}

export type AttachStep =
  /** Make the interface from scratch; first: it carries the default route and the sandbox's rules. */
  | { readonly step: 'plumb'; readonly itf: DesiredInterface; readonly first: boolean; readonly clearInside: boolean; readonly clearHostVeth: boolean }
  /** Whole but with the wrong address or MAC. */
  | { readonly step: 'readdress'; readonly itf: DesiredInterface }
  /** A macvlan interface of ours whose endpoint is gone (network disconnect). */
  | { readonly step: 'remove'; readonly ifname: string };

/**
 * What to do so the namespace holds the desired interfaces: pure. An interface half there
 * (either end of its veth gone, or another kind of device under its name) is made again.
 * A macvlan interface has no host end whose removal takes it along, so one no longer wanted
 * is removed here, except in a namespace someone else brought (a process's, a runtime's):
 * their own devices are not ours to judge, nor to replace (an error says so).
 */
export function planInterfaces(sb: DesiredSandbox, actual: ReadonlyMap<string, ActualInterface>, hostLinks: ReadonlySet<string>): AttachStep[] {
  const steps: AttachStep[] = [];
  const own = namespaceSource(sb).kind === 'own';
  for (const [i, itf] of sb.interfaces.entries()) {
    if (itf.kind === 'macvlan' && !hostLinks.has(itf.parent)) throw new ParentMissingError(itf);
    const have = actual.get(itf.ifname);
    const whole = itf.kind === 'macvlan' ? have?.kind === 'macvlan' : have?.kind === 'veth' && hostLinks.has(itf.hostVeth);
    if (have && !whole && !own) {
      // A device of the process's or runtime's own under our name: not ours to replace.
      throw new Error(`${itf.ifname} in the namespace of ${sb.container.name} is a device ctnet did not make; not replacing it (remove it, or attach under another name)`);
    }
    if (!have || !whole) {
      steps.push({ step: 'plumb', itf, first: i === 0, clearInside: have !== undefined, clearHostVeth: itf.hostVeth !== '' && hostLinks.has(itf.hostVeth) });
    } else if (!have.addrs.includes(itf.cidr) || have.mac !== itf.mac) steps.push({ step: 'readdress', itf });
  }
  if (own) {
    const wanted = new Set(sb.interfaces.map((i) => i.ifname));
    for (const [name, have] of actual) if (have.kind === 'macvlan' && !wanted.has(name)) steps.push({ step: 'remove', ifname: name });
  }
  return steps;
}

/**
 * The `ip` lines that make one interface: outside (run on the host) and inside (run in the
 * namespace). A veth's peer is made in the namespace, under its final name, MAC and MTU, in
 * the same request: moving a device between namespaces afterwards costs the kernel a network
 * synchronisation (~15-25 ms here), making it there costs nothing extra. A macvlan
 * sub-interface is made on the host under a temporary name and moved in.
 */
export function plumbBatches(netns: string, itf: DesiredInterface, first: boolean): { tmp: string; outside: string[]; inside: string[] } {
  const inside = ['link set lo up'];
  let tmp: string;
  let outside: string[];
  if (itf.kind === 'veth') {
    tmp = itf.hostVeth;
    outside = [
      `link add ${itf.hostVeth} mtu ${itf.mtu} type veth peer name ${itf.ifname} address ${itf.mac} mtu ${itf.mtu} netns ${netns}`,
      `link set ${itf.hostVeth} master ${itf.bridge} up`,
    ];
    inside.push(
      `link set ${itf.ifname} up`,
      `addr replace ${itf.cidr} dev ${itf.ifname}`,
      // ARP on the overlay is answered by the local VXLAN proxy and never crosses the network,
      // so retrying every 100 ms instead of every second costs nothing and lets a client reach
      // a peer that appeared a moment after its first attempt without waiting out a second.
      `ntable change name arp_cache dev ${itf.ifname} retrans 100`,
    );
  } else {
    tmp = macvlanTempName(itf.endpointId);
    outside = [`link add ${tmp} link ${itf.parent} mtu ${itf.mtu} type macvlan mode bridge`, `link set ${tmp} netns ${netns}`];
    // On the real segment neighbours learn of us by ARP: with arp_notify the interface
    // announces its address (gratuitous ARP) as it comes up, so a peer already trying to
    // reach it gets through at once instead of at its next ARP retry (up to a second later).
    // The address goes on before the link comes up, for the announcement to carry it.
    inside.push(`link set ${tmp} name ${itf.ifname}`, `link set ${itf.ifname} address ${itf.mac} mtu ${itf.mtu}`, `addr replace ${itf.cidr} dev ${itf.ifname}`, `link set ${itf.ifname} up`);
  }
  // The default route goes last: before the address exists the gateway would be unreachable.
  if (first) inside.push(`route replace default via ${itf.gateway} dev ${itf.ifname}`);
  return { tmp, outside, inside };
}

export interface Attacher {
  /** Gives the sandbox's namespace its name under /run/netns (made, a process's, or a runtime's path bound there). */
  ensureNamespace(netns: string, source: NamespaceSource): Promise<void>;
  /** What is inside the namespace now. */
  readInterfaces(netns: string): Promise<Map<string, ActualInterface>>;
  /** Applies a plan; says whether the first interface (and so the rules) was made. */
  apply(netns: string, steps: readonly AttachStep[], rules: NftTable | undefined): Promise<{ first: boolean }>;
  /** Undoes an attachment: our interfaces go; the namespace goes if we made it, else only our name for it. */
  detach(netns: string, source: NamespaceSource['kind'], ifnames: readonly string[]): Promise<void>;
}

export function createAttacher(runner: CommandRunner): Attacher {
  const ip = async (args: string[], input?: string): Promise<void> => {
    const res = await runner.run('ip', args, input === undefined ? undefined : { input });
    if (res.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
  };

  /**
   * Inside the namespace, in one process: the interface's batch, then for the first interface
   * the sandbox's nftables table (before its process starts: Docker-style configurations name
   * 127.0.0.11 as their resolver, handed to the embedded one at the gateway, and a service VIP
   * must balance from the first connection). The DNS packet leaves with a loopback source, so
   * the interface must accept that (route_localnet, or-ed over "all" and the device: "all"
   * covers the resolver's interface whichever it is) until postrouting gives it the
   * endpoint's own address. A macvlan announces itself as it comes up (arp_notify, first).
   * nsenter, not `ip netns exec`: no mount namespace to set up for a few commands.
   */
  const inside = async (netns: string, itf: DesiredInterface, batch: string, first: boolean, rules: NftTable | undefined): Promise<void> => {
    const steps = [
      ...(itf.kind === 'macvlan' ? ['echo 1 > /proc/sys/net/ipv4/conf/all/arp_notify'] : []),
      'printf "%s" "$1" | ip -batch -',
      ...(first ? ['echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet', 'exec nft -f -'] : []),
    ];
    const res = await runner.run('nsenter', [`--net=/run/netns/${netns}`, '--', 'sh', '-c', `set -e; ${steps.join('; ')}`, 'sh', batch], {
      input: rules ? replaceTableScript(rules) : '',
    });
    if (res.exitCode !== 0) throw new Error(`plumbing ${itf.ifname} in ${netns}: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
  };

  /** One veth or macvlan: two processes, one on the host and one inside. */
  const plumb = async (netns: string, itf: DesiredInterface, first: boolean, rules: NftTable | undefined): Promise<void> => {
    const { tmp, outside, inside: lines } = plumbBatches(netns, itf, first);
    try {
      await ip(['-batch', '-'], outside.join('\n') + '\n');
    } catch (err) {
      await ip(['link', 'del', tmp]).catch(() => undefined); // never leave a half-made device on the host
      throw err;
    }
    await inside(netns, itf, lines.join('\n') + '\n', first, rules);
  };

  /** Checked again whenever a runtime's path is bound (after a reboot a /proc path may name another process, or this host). */
  const checkPath = async (path: string): Promise<void> => {
    const problem = await netnsProblem(path);
    if (problem) throw new Error(`the runtime's namespace ${path} ${problem}; not attached (DEL it, or GC)`);
  };
  // As `ip netns add` does: /run/netns a shared mount point, so the name is seen from every
  // mount namespace; then the runtime's namespace bound to our name ($1 the name, $2 the
  // path). The bind holds the namespace until detach, as Docker's sandbox key does.
  const BIND =
    'mkdir -p /run/netns; mountpoint -q /run/netns || { mount --bind /run/netns /run/netns; mount --make-shared /run/netns; }; ' +
    ': > "/run/netns/$1"; mount --bind "$2" "/run/netns/$1" || { rm -f "/run/netns/$1"; exit 1; }';

  return {
    async ensureNamespace(netns, source) {
      if (source.kind === 'own') await ip(['netns', 'add', netns]);
      // pipework-style: name the process's own namespace instead of making a new one
      else if (source.kind === 'pid') await ip(['netns', 'attach', netns, String(source.pid)]);
      else {
        await checkPath(source.path);
        const res = await runner.run('sh', ['-c', `set -e; ${BIND}`, 'sh', netns, source.path]);
        if (res.exitCode !== 0) throw new Error(`binding ${source.path} as ${netns}: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
      }
    },

    async readInterfaces(netns) {
      const res = await runner.run('ip', ['-n', netns, '-d', '-j', 'addr', 'show']);
      if (res.exitCode !== 0) throw new Error(`reading ${netns}: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
      return parseNamespaceInterfaces(res.stdout);
    },

    async apply(netns, steps, rules) {
      let first = false;
      for (const s of steps) {
        if (s.step === 'plumb') {
          if (s.clearInside) await ip(['-n', netns, 'link', 'del', s.itf.ifname]).catch(() => undefined);
          if (s.clearHostVeth) await ip(['link', 'del', s.itf.hostVeth]).catch(() => undefined);
          await plumb(netns, s.itf, s.first, rules);
          first ||= s.first;
        } else if (s.step === 'readdress') {
          await ip(['-n', netns, '-batch', '-'], `link set ${s.itf.ifname} address ${s.itf.mac} up\naddr replace ${s.itf.cidr} dev ${s.itf.ifname}\n`);
        } else await ip(['-n', netns, 'link', 'del', s.ifname]).catch(() => undefined);
      }
      return { first };
    },

    async detach(netns, source, ifnames) {
      // A namespace someone else brought keeps its lo and its own devices; ours go with our name.
      if (source !== 'own') {
        if (ifnames.length > 0) await ip(['-n', netns, '-force', '-batch', '-'], ifnames.map((n) => `link del ${n}`).join('\n') + '\n').catch(() => undefined);
      }
      await ip(['netns', 'del', netns]).catch(() => undefined);
    },
  };
}
