import { invalidArgument } from '../errors.js';
import { parseIPv4 } from '../net/ipv4.js';
import { LIMITS } from './limits.js';

/**
 * Ports, in Docker's words: a container *exposes* ports (`--expose`, what `--link` and `-P`
 * see) and *publishes* them on its node (`-p`); a service publishes in `ingress` mode (every
 * node answers: the routing mesh) or `host` mode (only nodes running a task).
 */
export type Protocol = 'tcp' | 'udp';
export const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp'];

export interface ExposedPort {
  readonly port: number;
  readonly protocol: Protocol;
}

/** One `-p`: hostPort 0 until the manager has chosen a free one; hostIp '' = every address of the node. */
export interface PortMapping {
  readonly protocol: Protocol;
  readonly hostIp: string;
  readonly hostPort: number;
  readonly containerPort: number;
}

export type PublishMode = 'ingress' | 'host';

/** One service `--publish`: published 0 until the manager has chosen one. */
export interface PublishSpec {
  readonly protocol: Protocol;
  readonly published: number;
  readonly target: number;
  readonly mode: PublishMode;
}

/** Docker's ephemeral range for `-p CONTAINER_PORT`, and Swarm's for a `--publish` without a published port. */
export const HOST_PORT_RANGE = { first: 32768, last: 60999 } as const;
export const INGRESS_PORT_RANGE = { first: 30000, last: 32767 } as const;

function parsePortNumber(text: string, what: string, allowZero = false): number {
  const t = text.trim();
  const n = /^\d{1,5}$/.test(t) ? Number(t) : NaN;
  if (!Number.isInteger(n) || n > 65535 || (n === 0 && !allowZero)) {
    throw invalidArgument(`invalid ${what} "${text}": a port is a whole number from 1 to 65535`);
  }
  return n;
}

/** "80", "8000-8002": a list of ports (a range expands). */
function parsePortRange(text: string, what: string): number[] {
  const dash = text.indexOf('-');
  if (dash < 0) return [parsePortNumber(text, what)];
  const lo = parsePortNumber(text.slice(0, dash), what);
  const hi = parsePortNumber(text.slice(dash + 1), what);
  if (hi < lo) throw invalidArgument(`invalid ${what} range "${text}": the end is before the start`);
  // Checked before expanding: "1-65535" must not cost 65,535 entries before it is refused.
  if (hi - lo + 1 > LIMITS.ports) {
    throw invalidArgument(`${what} range "${text}" has ${hi - lo + 1} ports, more than the ${LIMITS.ports} one container may have; publish a smaller range`);
  }
  return Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
}

export function parseProtocol(text: string, where: string): Protocol {
  const p = text.trim().toLowerCase() as Protocol;
  if (!PROTOCOLS.includes(p)) throw invalidArgument(`invalid protocol "${text}" in ${where}: use tcp or udp`);
  return p;
}

function splitProtocol(text: string): { ports: string; protocol: Protocol } {
  const slash = text.lastIndexOf('/');
  if (slash < 0) return { ports: text, protocol: 'tcp' };
  return { ports: text.slice(0, slash), protocol: parseProtocol(text.slice(slash + 1), `"${text}"`) };
}

/** `--expose 80`, `--expose 53/udp`, `--expose 8000-8010`. */
export function parseExpose(text: string): ExposedPort[] {
  const { ports, protocol } = splitProtocol(text.trim());
  if (ports === '') throw invalidArgument(`--expose "${text}" names no port; write e.g. --expose 80 or --expose 53/udp`);
  return parsePortRange(ports, 'port in --expose').map((port) => ({ port, protocol }));
}

/**
 * Docker's `-p`: `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]`, ranges of equal length
 * (`8000-8001:80-81`), `HOST_IP::CONTAINER_PORT` and a bare container port (host port chosen).
 */
export function parsePortMapping(text: string): PortMapping[] {
  const raw = text.trim();
  const example = 'write [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp], e.g. -p 8080:80';
  if (raw === '') throw invalidArgument(`-p "" names no port; ${example}`);
  const { ports, protocol } = splitProtocol(raw);
  const parts = ports.split(':');
  if (parts.length > 3) throw invalidArgument(`invalid port mapping "${text}": too many ":" (IPv6 host addresses are not supported); ${example}`);
  const containerText = parts[parts.length - 1]!;
  const hostText = parts.length >= 2 ? parts[parts.length - 2]! : '';
  const ipText = parts.length === 3 ? parts[0]!.trim() : '';
  if (containerText.trim() === '') throw invalidArgument(`no container port in "${text}"; ${example}`);
  if (parts.length === 3 && ipText === '') throw invalidArgument(`empty host IP in "${text}"; drop the leading ":" or give an address, e.g. 127.0.0.1:8080:80`);
  if (ipText) parseIPv4(ipText, `host IP in -p "${text}"`);
  const containerPorts = parsePortRange(containerText, 'container port');
  const hostPorts = hostText.trim() === '' ? containerPorts.map(() => 0) : parsePortRange(hostText, 'host port');
  if (hostPorts.length !== containerPorts.length) {
    throw invalidArgument(
      `invalid port mapping "${text}": the host range has ${hostPorts.length} ports and the container range ${containerPorts.length}; give ranges of the same length`,
    );
  }
  return containerPorts.map((containerPort, i) => ({ protocol, hostIp: ipText, hostPort: hostPorts[i]!, containerPort }));
}

/**
 * `service create --publish`: the long form `published=8080,target=80[,mode=ingress|host][,protocol=tcp|udp]`
 * or the short `8080:80[/udp]` (ingress mode).
 */
export function parsePublish(text: string): PublishSpec {
  const raw = text.trim();
  if (!raw.includes('=')) {
    const [m, ...more] = parsePortMapping(raw);
    if (more.length > 0 || !m) throw invalidArgument(`--publish "${text}": one port per --publish (ranges are for -p)`);
    if (m.hostIp) throw invalidArgument(`--publish "${text}": a service is published on every address of a node; drop the host IP`);
    return { protocol: m.protocol, published: m.hostPort, target: m.containerPort, mode: 'ingress' };
  }
  const fields = new Map<string, string>();
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw invalidArgument(`--publish "${text}": invalid field "${part}", each field is a key=value pair`);
    const key = part.slice(0, eq).trim().toLowerCase();
    if (!['published', 'target', 'mode', 'protocol'].includes(key)) {
      throw invalidArgument(`--publish "${text}": unknown field "${key}"; use published, target, mode and protocol`);
    }
    fields.set(key, part.slice(eq + 1).trim());
  }
  const target = fields.get('target');
  if (target === undefined) throw invalidArgument(`--publish "${text}": missing mandatory field "target" (the task's port)`);
  const mode = (fields.get('mode') ?? 'ingress').toLowerCase();
  if (mode !== 'ingress' && mode !== 'host') throw invalidArgument(`--publish "${text}": invalid publish mode "${mode}": must be either "ingress" or "host"`);
  const published = fields.get('published');
  return {
    protocol: fields.has('protocol') ? parseProtocol(fields.get('protocol')!, `--publish "${text}"`) : 'tcp',
    published: published === undefined || published === '' ? 0 : parsePortNumber(published, 'published port'),
    target: parsePortNumber(target, 'target port'),
    mode,
  };
}

/** Where a mapping is published on its node: `0.0.0.0:8080` ('' is every address). */
export const hostBinding = (m: Pick<PortMapping, 'hostIp' | 'hostPort'>): string => `${m.hostIp || '0.0.0.0'}:${m.hostPort}`;

/** `80/tcp -> 0.0.0.0:8080`, as `docker port` prints. */
export const formatPortMapping = (m: PortMapping): string => `${m.containerPort}/${m.protocol} -> ${hostBinding(m)}`;

/** Two claims on a node's port clash when the protocol and port match and the addresses overlap ('' is every address). */
export const portsClash = (a: { protocol: Protocol; hostIp: string; hostPort: number }, b: { protocol: Protocol; hostIp: string; hostPort: number }): boolean =>
  a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostIp === '' || b.hostIp === '' || a.hostIp === b.hostIp);
