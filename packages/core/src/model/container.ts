import { invalidArgument } from '../errors.js';
import { DEFAULT_BRIDGE } from './local.js';
import { parseIPv4 } from '../net/ipv4.js';
import { parseName } from './names.js';
import type { TaskInfo, TaskStatus } from './service.js';
import { parseLink, type Link } from './links.js';
import { checkCmdSize, checkEnvSize, checkListSize, checkPortCount } from './limits.js';
import { parseExpose, parsePortMapping, portsClash, type ExposedPort, type PortMapping } from './ports.js';

/** A container: a command in its own network namespace on one node (the seeds' "sandbox"). */
export interface Container {
  readonly id: string;
  readonly name: string;
  readonly node: string;
  readonly cmd: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly hostname: string;
  readonly dns: readonly string[];
  readonly dnsSearch: readonly string[];
  readonly createdAt: string;
  /** network: its own sandbox on its endpoints' networks; none: a sandbox with only lo; host: the host's namespace; container: another container's sandbox. */
  readonly mode: ContainerMode;
  readonly sharedWith: string; // mode container: the id of the container whose sandbox it joins
  readonly attachPid: number; // > 0: an existing process plugged in by `ctagent attach`
  /** A namespace a runtime handed over (CNI_NETNS, a path on the node): attached, nothing started. */
  readonly attachNetns?: string;
  /** Set for an attachment the CNI plugin made: the runtime's key for it. */
  readonly cni?: CniRef;
  /** Set for a service's task: the manager created it and restarts, replaces and removes it. */
  readonly task?: TaskInfo;
  /** What the node's agent last reported; absent until it has. */
  readonly status?: TaskStatus;
  /** `-p`: published on its node (host ports already chosen). Absent: none. */
  readonly ports?: readonly PortMapping[];
  /** `--expose` (and the targets of `-p`): what `--link` and `-P` see. */
  readonly expose?: readonly ExposedPort[];
  /** `--link`: /etc/hosts entries (their environment is already in `env`). */
  readonly links?: readonly Link[];
}

/** A CNI runtime's key for an attachment: one (container id, interface name) is one attachment. */
export interface CniRef {
  readonly containerId: string;
  readonly ifname: string;
}

/** A container whose namespace is not ours to run a process in: `ctagent attach` or a CNI runtime's. */
export const isAttached = (c: Pick<Container, 'attachPid' | 'attachNetns'>): boolean => c.attachPid > 0 || (c.attachNetns ?? '') !== '';

/** Linux interface names: 1-15 characters, no '/', ':' or whitespace, not "." or "..". */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

export function parseCniRef(ref: { containerId: string; ifname: string }): CniRef {
  const containerId = ref.containerId.trim();
  if (!containerId || containerId.length > 256 || /[\s/]/.test(containerId)) {
    throw invalidArgument(`CNI container id "${ref.containerId}" is not valid: 1-256 characters, no "/" or whitespace`);
  }
  if (!IFNAME.test(ref.ifname) || ref.ifname === '.' || ref.ifname === '..') {
    throw invalidArgument(`interface name "${ref.ifname}" is not valid: 1-15 of letters, digits, "_", "." and "-" (e.g. eth0)`);
  }
  return { containerId, ifname: ref.ifname };
}

/** A namespace path handed over by a runtime: absolute, one line, no "..". */
export function parseNetnsPath(path: string): string {
  if (!path.startsWith('/') || path.length > 4096 || /[\n\0]/.test(path) || path.split('/').includes('..')) {
    throw invalidArgument(`network namespace path "${path}" is not valid: an absolute path such as /var/run/netns/NAME or /proc/PID/ns/net`);
  }
  return path;
}

export type ContainerMode = 'network' | 'none' | 'host' | 'container';

/** Docker's --network forms: a network name, none, host, or container:NAME. */
export function parseNetworkMode(text: string): { mode: ContainerMode; network?: string; container?: string } {
  const t = text.trim();
  if (t === 'none' || t === 'host') return { mode: t };
  if (t.startsWith('container:')) {
    const name = t.slice('container:'.length);
    if (!name) throw invalidArgument('--network container: needs a container name, e.g. --network container:web');
    return { mode: 'container', container: parseName(name, 'container') };
  }
  // As Docker: no --network means the default bridge network.
  return { mode: 'network', network: t === '' ? DEFAULT_BRIDGE : t };
}

export interface ContainerRequest {
  name: string;
  node?: string;
  cmd?: readonly string[];
  env?: Record<string, string>;
  hostname?: string;
  dns?: readonly string[];
  dnsSearch?: readonly string[];
  /** `-p` specs, `-P`, `--expose` specs and `--link NAME[:ALIAS]`, as typed. */
  publish?: readonly string[];
  publishAll?: boolean;
  expose?: readonly string[];
  links?: readonly string[];
}

export interface ContainerSpec {
  readonly name: string;
  readonly node?: string;
  readonly cmd: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly hostname: string;
  readonly dns: readonly string[];
  readonly dnsSearch: readonly string[];
  /** Host port 0: the manager chooses a free one on the node. */
  readonly ports: readonly PortMapping[];
  readonly expose: readonly ExposedPort[];
  readonly links: readonly { readonly name: string; readonly alias: string }[];
}

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseContainerRequest(req: ContainerRequest): ContainerSpec {
  const name = parseName(req.name, 'container');
  const node = req.node?.trim() ? parseName(req.node, 'node') : undefined;
  const cmd = [...(req.cmd ?? [])];
  if (cmd.length === 0 || cmd[0]!.trim() === '') {
    throw invalidArgument('no command given; put it after "--", e.g. ctmgr run -d --name web --network app -- sleep infinity');
  }
  checkCmdSize(cmd);
  checkEnvSize(req.env);
  checkListSize(req.dns, '--dns servers');
  checkListSize(req.dnsSearch, '--dns-search domains');
  checkListSize(req.links, '--link options');
  checkListSize(req.publish, '-p options');
  checkListSize(req.expose, '--expose options');
  for (const key of Object.keys(req.env ?? {})) {
    if (!ENV_KEY.test(key)) throw invalidArgument(`environment variable name "${key}" is invalid; use letters, digits and _`);
  }
  const hostname = req.hostname?.trim() ? parseName(req.hostname, 'hostname') : name;
  const dns = (req.dns ?? []).map((d) => {
    parseIPv4(d, '--dns');
    return d.trim();
  });
  const dnsSearch = (req.dnsSearch ?? []).map((d) => {
    if (!/^[A-Za-z0-9.-]{1,253}$/.test(d)) throw invalidArgument(`--dns-search "${d}" is not a domain name`);
    return d;
  });
  const { ports, expose } = parsePorts(req);
  const links = (req.links ?? []).map(parseLink);
  const aliases = new Set<string>();
  for (const l of links) {
    if (aliases.has(l.alias.toLowerCase())) throw invalidArgument(`two --link options use the alias ${l.alias}; give each link its own alias`);
    aliases.add(l.alias.toLowerCase());
    if (l.name.toLowerCase() === name.toLowerCase()) throw invalidArgument(`container ${name} cannot --link to itself`);
  }
  return { name, ...(node && { node }), cmd, env: { ...(req.env ?? {}) }, hostname, dns, dnsSearch, ports, expose, links };
}

/**
 * `-p`, `--expose` and `-P` together: a published port is exposed too, and `-P` publishes
 * every exposed port not already published on a host port the manager chooses (as Docker).
 */
function parsePorts(req: ContainerRequest): { ports: PortMapping[]; expose: ExposedPort[] } {
  const ports = (req.publish ?? []).flatMap(parsePortMapping);
  // Indexed by protocol and host port, so a thousand mappings cost a thousand lookups, not a million comparisons.
  const byHostPort = new Map<string, PortMapping[]>();
  for (const p of ports) {
    if (p.hostPort === 0) continue;
    const key = `${p.protocol}/${p.hostPort}`;
    const same = byHostPort.get(key) ?? [];
    const twin = same.find((q) => portsClash(p, q));
    if (twin) throw invalidArgument(`host port ${p.hostPort}/${p.protocol} is published twice (for container ports ${twin.containerPort} and ${p.containerPort}); pick another host port`);
    byHostPort.set(key, [...same, p]);
  }
  const expose: ExposedPort[] = [];
  const exposed = new Set<string>();
  const addExposed = (e: ExposedPort) => {
    if (!exposed.has(`${e.protocol}/${e.port}`)) (exposed.add(`${e.protocol}/${e.port}`), expose.push(e));
  };
  for (const text of req.expose ?? []) for (const e of parseExpose(text)) addExposed(e);
  for (const p of ports) addExposed({ port: p.containerPort, protocol: p.protocol });
  if (req.publishAll) {
    const published = new Set(ports.map((p) => `${p.protocol}/${p.containerPort}`));
    if (expose.length === 0) throw invalidArgument('-P publishes the exposed ports, but none is exposed; add --expose PORT (or use -p)');
    for (const e of expose) {
      if (!published.has(`${e.protocol}/${e.port}`)) ports.push({ protocol: e.protocol, hostIp: '', hostPort: 0, containerPort: e.port });
    }
  }
  checkPortCount(ports.length, '-p/-P');
  checkPortCount(expose.length, '--expose/-p');
  return { ports, expose: expose.sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol)) };
}
