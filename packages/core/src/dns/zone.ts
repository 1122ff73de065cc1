import type { ClusterState } from '../desired/host.js';
import { nameKey } from '../model/names.js';
import { isDefaultBridge } from '../model/local.js';
import { isServing } from '../model/service.js';
import { isVirtualIp } from '../model/endpoint.js';
import { parseIPv4 } from '../net/ipv4.js';
import { ptrNameToIPv4 } from './names.js';

/**
 * What the embedded resolver knows, built from the desired state (pure) and rebuilt on every
 * change. Answers are scoped to the networks of the endpoint asking, as Docker's are: a name
 * only on another network is NXDOMAIN, a name nobody has is forwarded upstream. Only exact
 * cluster names are ours: a network named `com` must not swallow `example.com`.
 */
export interface Zone {
  /** Network ids of the container whose endpoint has this address (its "view"). */
  readonly viewOf: ReadonlyMap<number, readonly string[]>;
  /** network id -> lowercased name -> addresses. */
  readonly names: ReadonlyMap<string, ReadonlyMap<string, readonly number[]>>;
  /** lowercased network name -> network id. */
  readonly networkByName: ReadonlyMap<string, string>;
  /** Every name known on any network (to tell NXDOMAIN from "forward it"). */
  readonly known: ReadonlySet<string>;
  /** address -> PTR name (<container>.<network>). */
  readonly ptr: ReadonlyMap<number, string>;
  /** "<network id>/<name>" of names answered in rotating order (dnsrr services). */
  readonly rotating: ReadonlySet<string>;
  /**
   * Addresses whose container is on `--internal` networks only: nothing they ask may leave the
   * cluster, so names that are not ours are never forwarded for them.
   */
  readonly isolated: ReadonlySet<number>;
  /**
   * Askers with no VIP balancing of their own: Docker's containers (ctnet's nftables table is
   * not in their sandbox, so a virtual IP would lead nowhere). To them a service in `vip` mode
   * answers with its running tasks, in rotating order, as `dnsrr` does.
   */
  readonly noVip: ReadonlySet<number>;
  /** A service's virtual IP -> its network and the name listing its tasks there. */
  readonly vipTasks: ReadonlyMap<number, { readonly net: string; readonly tasks: string }>;
}

/**
 * `node`: the host whose resolver this is. A bridge network is local, so its names answer only
 * for endpoints on this host; the default `bridge` network answers none (as docker0: `--link`
 * is how its containers find each other). Without `node`, every name (a cluster-wide view).
 */
export function buildZone(state: ClusterState, node?: string): Zone {
  const me = node === undefined ? undefined : nameKey(node);
  const networkByName = new Map<string, string>();
  for (const n of state.networks.values()) networkByName.set(nameKey(n.name), n.id);
  const names = new Map<string, Map<string, number[]>>();
  const known = new Set<string>();
  const ptr = new Map<number, string>();
  const rotating = new Set<string>();
  const byContainer = new Map<string, string[]>();
  const addrOf = new Map<number, string>(); // address -> container id ('' = bare endpoint)
  const containers = new Map([...state.containers.values()].map((c) => [c.id, c]));
  const vipTasks = new Map<number, { net: string; tasks: string }>();
  const noVip = new Set<number>();
  const add = (net: string, name: string, addr: number) => {
    let m = names.get(net);
    if (!m) names.set(net, (m = new Map()));
    const key = nameKey(name);
    const list = m.get(key);
    if (!list) m.set(key, [addr]);
    else if (!list.includes(addr)) list.push(addr);
    known.add(key);
  };
  // Sorted, so every host builds the same order and rotation starts from the same place.
  const sorted = [...state.endpoints.values()].sort((a, b) => a.ip.localeCompare(b.ip, 'en', { numeric: true }));
  for (const ep of sorted) {
    const net = state.networks.get(ep.networkId);
    if (!net) continue;
    const addr = parseIPv4(ep.ip);
    addrOf.set(addr, ep.container);
    if (ep.container) {
      const list = byContainer.get(ep.container);
      if (list) list.push(net.id);
      else byContainer.set(ep.container, [net.id]);
    }
    if (net.driver === 'bridge' && (isDefaultBridge(net) || (me !== undefined && nameKey(ep.node) !== me))) continue;
    if (isVirtualIp(ep)) vipTasks.set(addr, { net: net.id, tasks: nameKey(`tasks.${ep.name}`) });
    const owner = ep.container ? containers.get(ep.container) : undefined;
    // A task is in DNS only while it runs and is wanted: never an address that is not serving.
    if (owner && !isServing(owner)) continue;
    add(net.id, ep.name, addr);
    for (const alias of ep.aliases) add(net.id, alias, addr);
    ptr.set(addr, `${ep.name}.${net.name}`);
    const task = owner?.task;
    if (task) {
      add(net.id, `tasks.${task.service}`, addr);
      if (task.endpointMode === 'dnsrr') {
        add(net.id, task.service, addr);
        rotating.add(`${net.id}/${nameKey(task.service)}`);
      }
    }
  }
  const viewOf = new Map<number, readonly string[]>();
  const isolated = new Set<number>();
  for (const ep of state.endpoints.values()) {
    const addr = parseIPv4(ep.ip);
    const view = addrOf.get(addr) ? (byContainer.get(ep.container) ?? [ep.networkId]) : [ep.networkId];
    viewOf.set(addr, view);
    if (ep.origin === 'docker') noVip.add(addr);
    // One network with a way out is enough, as Docker decides (sandbox "has external access").
    if (view.every((id) => state.networks.get(id)?.internal === true)) isolated.add(addr);
  }
  return { viewOf, names, networkByName, known, ptr, rotating, isolated, noVip, vipTasks };
}

export type Lookup =
  | { readonly kind: 'a'; readonly addrs: readonly number[] }
  | { readonly kind: 'ptr'; readonly name: string }
  | { readonly kind: 'nodata' } // the name is ours, the type is not (AAAA until IPv6 exists)
  | { readonly kind: 'nxdomain' }
  | { readonly kind: 'forward' }
  // Not ours, and the asker is on --internal networks only: never forwarded (the server answers
  // SERVFAIL, as Docker's resolver does when it may not proxy).
  | { readonly kind: 'isolated' }
  | { readonly kind: 'refused' }; // the asker is no endpoint: we are not an open resolver

const T_A = 1;
const T_PTR = 12;
const FORWARD: Lookup = { kind: 'forward' };
const ISOLATED: Lookup = { kind: 'isolated' };

/** `turn` rotates the answers of dnsrr names (the server passes a counter). */
export function lookup(zone: Zone, source: number, qname: string, qtype: number, turn = 0): Lookup {
  const view = zone.viewOf.get(source);
  if (!view) return { kind: 'refused' };
  const notOurs = zone.isolated.has(source) ? ISOLATED : FORWARD;
  if (qname.endsWith('.in-addr.arpa')) {
    const addr = ptrNameToIPv4(qname);
    const name = addr === undefined ? undefined : zone.ptr.get(addr);
    if (name === undefined) return notOurs;
    return qtype === T_PTR ? { kind: 'ptr', name } : { kind: 'nodata' };
  }
  // <name> on any of the asker's networks (names may hold dots: tasks.web, web.1.<id>), else
  // <name>.<network> on one of them.
  let found: number[] = [];
  let rotate = false;
  for (const id of view) {
    for (const a of zone.names.get(id)?.get(qname) ?? []) if (!found.includes(a)) found.push(a);
    rotate ||= zone.rotating.has(`${id}/${qname}`);
  }
  const dot = qname.lastIndexOf('.');
  const netId = dot > 0 ? zone.networkByName.get(qname.slice(dot + 1)) : undefined;
  const bare = netId !== undefined ? qname.slice(0, dot) : qname;
  if (found.length === 0 && netId !== undefined && view.includes(netId)) {
    found = [...(zone.names.get(netId)?.get(bare) ?? [])];
    rotate = zone.rotating.has(`${netId}/${bare}`);
  }
  if (found.length > 0 && zone.noVip.has(source)) {
    // A virtual IP means nothing where nothing balances it: its tasks instead.
    const out: number[] = [];
    for (const a of found) {
      const v = zone.vipTasks.get(a);
      for (const t of v ? (zone.names.get(v.net)?.get(v.tasks) ?? []) : [a]) if (!out.includes(t)) out.push(t);
      rotate ||= v !== undefined;
    }
    found = out;
    if (found.length === 0) return { kind: 'nodata' }; // the service runs no task: nothing to reach
  }
  if (found.length > 0) {
    if (qtype !== T_A) return { kind: 'nodata' };
    const k = rotate ? turn % found.length : 0;
    return { kind: 'a', addrs: k === 0 ? found : [...found.slice(k), ...found.slice(0, k)] };
  }
  // NXDOMAIN only for a name that is the cluster's, just not on the asker's networks: <name> on
  // some network, or <name>.<network> with <name> on that network. A last label that merely
  // spells a network (`example.com` beside a network `com`, `pg.app` when pg is not on app) is
  // not ours: it goes upstream like any unknown name.
  if (zone.known.has(qname) || (netId !== undefined && zone.names.get(netId)?.has(bare))) return { kind: 'nxdomain' };
  return notOurs;
}
