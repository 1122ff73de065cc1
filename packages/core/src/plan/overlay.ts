import type { DesiredHost, DesiredOverlay } from '../desired/host.js';
import { DEVICE_PREFIX, isOwnedDevice } from '../desired/host.js';
import type { ActualFdb, ActualHost, ActualLink, ActualNeigh } from './actual.js';
import type { KernelOp } from './ops.js';

/**
 * Diffs what the host should have against what the kernel has, into an ordered plan:
 * devices first (a VXLAN device needs its bridge, entries need their device), then
 * addresses, FDB and neighbour entries, then removals. Pure: the same inputs give the same
 * plan, and a converged host gives an empty one — that is how drift is detected.
 */
export function planOverlays(desired: DesiredHost, actual: ActualHost): KernelOp[] {
  const links = new Map(actual.links.map((l) => [l.name, l]));
  const adds: KernelOp[] = [];
  const sets: KernelOp[] = [];
  const entries: KernelOp[] = [];
  const removals: KernelOp[] = [];

  const fdbByDev = groupByDev(actual.fdb);
  const neighByDev = groupByDev(actual.neigh);
  for (const want of desired.overlays) {
    planBridge(want, links.get(want.bridge), adds, sets, removals);
    planAddresses(want, actual, entries);
    if (want.vxlan === '') continue; // a local bridge network: nothing leaves the host
    planVxlan(want, links.get(want.vxlan), adds, sets);
    planEntries(want, fdbByDev, neighByDev, entries);
  }
  // Host ends of sandbox veths: the sandbox step creates them; here they are kept on their bridge.
  for (const sb of desired.sandboxes) {
    for (const itf of sb.interfaces) {
      const have = itf.hostVeth === '' ? undefined : links.get(itf.hostVeth);
      if (!have) continue;
      if (have.master !== itf.bridge || !have.up || have.mtu !== itf.mtu) {
        sets.push({ op: 'link-set', name: itf.hostVeth, master: itf.bridge, mtu: itf.mtu, up: true });
      }
    }
  }
  for (const p of desired.plugged ?? []) {
    const have = links.get(p.hostVeth);
    if (have && (have.master !== p.bridge || !have.up || have.mtu !== p.mtu)) sets.push({ op: 'link-set', name: p.hostVeth, master: p.bridge, mtu: p.mtu, up: true });
  }
  // Our devices that nothing wants any more (networks removed, or left over from before a restart).
  const wanted = new Set<string>();
  for (const o of desired.overlays) wanted.add(o.bridge).add(o.vxlan);
  for (const sb of desired.sandboxes) for (const i of sb.interfaces) wanted.add(i.hostVeth);
  for (const p of desired.plugged ?? []) wanted.add(p.hostVeth);
  wanted.delete('');
  const stale = actual.links.filter((l) => isOwnedDevice(l.name) && !wanted.has(l.name));
  // VXLAN and veths before bridges: a bridge goes last, once nothing hangs off it.
  stale.sort((a, b) => Number(a.name.startsWith(DEVICE_PREFIX.bridge)) - Number(b.name.startsWith(DEVICE_PREFIX.bridge)));
  for (const l of stale) removals.push({ op: 'link-del', name: l.name });

  return [...adds, ...sets, ...entries, ...removals];
}

function planBridge(want: DesiredOverlay, have: ActualLink | undefined, adds: KernelOp[], sets: KernelOp[], removals: KernelOp[]): void {
  if (have && have.kind !== 'bridge') {
    adds.push({ op: 'link-del', name: want.bridge }); // something else has the name: it goes first
    have = undefined;
  }
  if (!have) {
    adds.push({ op: 'bridge-add', name: want.bridge, mtu: want.mtu, mac: want.bridgeMac }, { op: 'link-set', name: want.bridge, up: true });
    return;
  }
  if (have.mtu !== want.mtu || !have.up) sets.push({ op: 'link-set', name: want.bridge, mtu: want.mtu, up: true });
  if (have.mac !== want.bridgeMac) sets.push({ op: 'link-set', name: want.bridge, mac: want.bridgeMac });
}

/** Whether an existing VXLAN device can be kept (flannel's vxlanLinksIncompat, inverted). */
export function vxlanCompatible(want: DesiredOverlay, have: ActualLink): boolean {
  // The kernel refuses to change the ARP-proxy flag of a live device, so proxy off means recreate.
  return (
    have.kind === 'vxlan' &&
    have.vxlan?.vni === want.vni &&
    have.vxlan.port === want.port &&
    have.vxlan.local === want.local &&
    have.vxlan.proxy
  );
}

function planVxlan(want: DesiredOverlay, have: ActualLink | undefined, adds: KernelOp[], sets: KernelOp[]): void {
  if (have && !vxlanCompatible(want, have)) {
    // VNI, port and local address of a VXLAN device cannot be changed in place: recreate it.
    adds.push({ op: 'link-del', name: want.vxlan });
    have = undefined;
  }
  if (!have) {
    adds.push(
      { op: 'vxlan-add', name: want.vxlan, vni: want.vni, port: want.port, local: want.local, mtu: want.mtu },
      { op: 'link-set', name: want.vxlan, master: want.bridge, up: true },
    );
    return;
  }
  if (have.vxlan?.learning) sets.push({ op: 'link-set', name: want.vxlan, vxlanFlags: true });
  if (have.master !== want.bridge || have.mtu !== want.mtu || !have.up) {
    sets.push({ op: 'link-set', name: want.vxlan, mtu: want.mtu, master: want.bridge, up: true });
  }
}

function planAddresses(want: DesiredOverlay, actual: ActualHost, out: KernelOp[]): void {
  const have = actual.addrs.filter((a) => a.dev === want.bridge).map((a) => a.cidr);
  if (!have.includes(want.gatewayCidr)) out.push({ op: 'addr-add', dev: want.bridge, cidr: want.gatewayCidr });
  for (const cidr of have) if (cidr !== want.gatewayCidr) out.push({ op: 'addr-del', dev: want.bridge, cidr });
}

type Grouped<T> = ReadonlyMap<string, readonly T[]>;

function groupByDev<T extends { dev: string }>(items: readonly T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const i of items) {
    const list = out.get(i.dev);
    if (list) list.push(i);
    else out.set(i.dev, [i]);
  }
  return out;
}

/** Entries run to tens of thousands: one pass over each side, keyed by MAC / IP, no string keys built. */
function planEntries(want: DesiredOverlay, fdbByDev: Grouped<ActualFdb>, neighByDev: Grouped<ActualNeigh>, out: KernelOp[]): void {
  const dev = want.vxlan;
  // FDB: only the VXLAN device's own (self) entries with a destination are ours; the bridge's
  // learned and local entries are the kernel's business.
  const have = new Map<string, ActualFdb[]>();
  for (const e of fdbByDev.get(dev) ?? []) {
    if (e.dst === undefined) continue;
    const list = have.get(e.mac);
    if (list) list.push(e);
    else have.set(e.mac, [e]);
  }
  const wantFdb = new Map<string, string>();
  for (const e of want.fdb) wantFdb.set(e.mac, e.dst);
  for (const [mac, dst] of wantFdb) {
    if (!have.get(mac)?.some((e) => e.dst === dst && e.permanent)) out.push({ op: 'fdb-replace', dev, mac, dst });
  }
  for (const [mac, entries] of have) {
    const dst = wantFdb.get(mac);
    const replaced = dst !== undefined && !entries.some((e) => e.dst === dst); // the replace above rewrites one of them
    for (const e of entries) {
      if (e.dst === dst) continue; // wanted (made permanent by the replace above if it was not)
      if (replaced && e === entries[0]) continue;
      out.push({ op: 'fdb-del', dev, mac, dst: e.dst! }); // unwanted, flood entries included
    }
  }
  const neigh = new Map<string, ActualNeigh>();
  for (const n of neighByDev.get(dev) ?? []) neigh.set(n.ip, n);
  const wantNeigh = new Map<string, string>();
  for (const n of want.neigh) wantNeigh.set(n.ip, n.mac);
  for (const [ip, mac] of wantNeigh) {
    const h = neigh.get(ip);
    if (!h || h.mac !== mac || !h.permanent) out.push({ op: 'neigh-replace', dev, ip, mac });
  }
  for (const ip of neigh.keys()) if (!wantNeigh.has(ip)) out.push({ op: 'neigh-del', dev, ip });
}
