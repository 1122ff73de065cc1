import { invalidArgument } from '../errors.js';
import { parseName } from './names.js';
import { checkListSize } from './limits.js';
import type { PortMapping } from './ports.js';

/** An endpoint: one interface of one sandbox on one network, placed on one node. */
export interface Endpoint {
  readonly id: string;
  readonly networkId: string;
  readonly name: string;
  readonly node: string;
  readonly ip: string;
  readonly mac: string;
  readonly aliases: readonly string[];
  readonly createdAt: string;
  /** Id of the container this endpoint is an interface of; '' for a bare endpoint. */
  readonly container: string;
  /** Who made it: absent (ctmgr, a container) or 'docker' (its node's Docker plugin: Docker's container holds the interface). */
  readonly origin?: EndpointOrigin;
  /** A Docker endpoint's published ports (-p), host ports chosen; a container's are on the container. */
  readonly ports?: readonly PortMapping[];
}

export type EndpointOrigin = 'docker';

/** A service's virtual IP: an endpoint of no node and no container (named after the service). */
export const isVirtualIp = (ep: Endpoint): boolean => ep.node === '' && ep.container === '';

export interface EndpointRequest {
  network: string; // name or id
  node: string;
  name: string;
  aliases?: readonly string[];
  ip?: string;
  mac?: string;
  origin?: string;
}

export interface EndpointSpec {
  readonly network: string;
  readonly node: string;
  readonly name: string;
  readonly aliases: readonly string[];
  readonly ip?: string; // still unparsed against the subnet: IPAM checks it
  readonly mac?: string;
  readonly container?: string;
  readonly origin?: EndpointOrigin;
}

export function parseEndpointRequest(req: EndpointRequest): EndpointSpec {
  const network = req.network.trim();
  if (network === '') throw invalidArgument('no network given; name the network the endpoint joins');
  const node = parseName(req.node, 'node');
  const name = parseName(req.name, 'endpoint');
  checkListSize(req.aliases, 'network aliases');
  const aliases = [...new Set((req.aliases ?? []).map((a) => parseName(a, 'alias')))];
  const mac = req.mac?.trim() ? parseMac(req.mac) : undefined;
  const ip = req.ip?.trim() || undefined;
  const origin = parseOrigin(req.origin);
  return { network, node, name, aliases, ...(ip && { ip }), ...(mac && { mac }), ...(origin && { origin }) };
}

export function parseOrigin(text: string | undefined): EndpointOrigin | undefined {
  const t = (text ?? '').trim();
  if (t === '') return undefined;
  if (t === 'docker') return t;
  throw invalidArgument(`unknown endpoint origin "${t}"; leave it empty (or "docker", which only a node's Docker plugin sets)`);
}

const MAC = /^([0-9a-f]{2})(:[0-9a-f]{2}){5}$/;

export function parseMac(text: string): string {
  const mac = text.trim().toLowerCase().replace(/-/g, ':');
  if (!MAC.test(mac)) throw invalidArgument(`MAC address "${text}" is malformed; write six hex pairs, e.g. 02:42:0a:00:00:05`);
  const first = parseInt(mac.slice(0, 2), 16);
  if (first & 1) throw invalidArgument(`MAC address "${text}" is a multicast address; the first byte must be even (e.g. 02:...)`);
  if (mac === '00:00:00:00:00:00') throw invalidArgument('MAC address 00:00:00:00:00:00 is not usable');
  return mac;
}

/** Docker's rule: 02:42 followed by the four bytes of the IPv4 address. */
export function macForIPv4(addr: number): string {
  const bytes = [0x02, 0x42, addr >>> 24, (addr >>> 16) & 255, (addr >>> 8) & 255, addr & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}
