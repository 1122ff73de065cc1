import { invalidArgument } from '../errors.js';
import { parseCidr, formatCidr, parseIPv4, formatIPv4 } from '../net/ipv4.js';
import { parseName } from './names.js';
import { checkLabelsSize } from './limits.js';

/** Routes a node may report; the rest are dropped (a BGP-fed host has a million). */
export const MAX_NODE_ROUTES = 256;
/** Shorter prefixes than this are default routes in disguise (0.0.0.0/1 + 128.0.0.0/1, as VPN clients install): they would overlap every subnet. */
export const MIN_ROUTE_PREFIX = 8;

/** A host running ctagent, as it registered itself. Readiness is kept apart (an etcd lease). */
export interface Node {
  readonly name: string;
  readonly addr: string; // advertise (VTEP) address
  readonly hostname: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly routes: readonly string[]; // CIDRs on the host, used to keep new subnets clear of them
  readonly registeredAt: string;
  /** What its agent reports wrong with networks on this host (network id -> message); absent when nothing. */
  readonly problems?: Readonly<Record<string, string>>;
  /** Its Docker's networks of other drivers (name -> driver), as its agent reports them: names a ctnet network cannot take. */
  readonly dockerNetworks?: Readonly<Record<string, string>>;
}

export type NodeStatus = 'ready' | 'down';

export function parseNodeRegistration(raw: {
  name: string;
  addr: string;
  hostname?: string;
  labels?: Record<string, string>;
  routes?: readonly string[];
}, registeredAt: string): Node {
  const name = parseName(raw.name, 'node');
  const addr = formatIPv4(parseIPv4(raw.addr, `advertise address of node ${name}`));
  checkLabelsSize(raw.labels, `labels of node ${name}`);
  const routes: string[] = [];
  for (const route of raw.routes ?? []) {
    if (routes.length >= MAX_NODE_ROUTES) break;
    // `ip -j route` prints the default route as "default" and host routes without a prefix.
    if (route === 'default') continue;
    try {
      const cidr = parseCidr(route.includes('/') ? route : `${route}/32`, 'route', false);
      if (cidr.prefix >= MIN_ROUTE_PREFIX) routes.push(formatCidr(cidr));
    } catch {
      throw invalidArgument(`node ${name} reported route "${route}" that is not an IPv4 CIDR`);
    }
  }
  return {
    name,
    addr,
    hostname: raw.hostname?.trim() || name,
    labels: { ...(raw.labels ?? {}) },
    routes: [...new Set(routes)].sort(),
    registeredAt,
  };
}
