import type { DesiredHost, DesiredOverlay } from '../desired/host.js';
import { DEVICE_PREFIX, isOwnedDevice } from '../desired/host.js';
import type { ActualHost, ActualLink } from './actual.js';
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

  for (const want of desired.overlays) {
    planBridge(want, links.get(want.bridge), adds, sets, removals);
    planVxlan(want, links.get(want.vxlan), adds, sets);
    planAddresses(want, actual, entries);
    planEntries(want, actual, entries);
  }
  // Host ends of sandbox veths: the sandbox step creates them; here they are kept on their bridge.
  for (const sb of desired.sandboxes) {
    for (const itf of sb.interfaces) {
      const have = links.get(itf.hostVeth);
      if (!have) continue;
      if (have.master !== itf.bridge || !have.up || have.mtu !== itf.mtu) {
        sets.push({ op: 'link-set', name: itf.hostVeth, master: itf.bridge, mtu: itf.mtu, up: true });
      }
    }
  }
  // Our devices that nothing wants any more (networks removed, or left over from before a restart).
  const wanted = new Set<string>();
  for (const o of desired.overlays) wanted.add(o.bridge).add(o.vxlan);
  for (const sb of desired.sandboxes) for (const i of sb.interfaces) wanted.add(i.hostVeth);
  const stale = actual.links.filter((l) => isOwnedDevice(l.name) && !wanted.has(l.name));
  // VXLAN and veths before bridges: a bridge goes last, once nothing hangs off it.
  stale.sort((a, b) => Number(a.name.startsWith(DEVICE_PREFIX.bridge)) - Number(b.name.startsWith(DEVICE_PREFIX.bridge)));
  for (const l of stale) removals.push({ op: 'link-del', name: l.name });

  return [...adds, ...sets, ...entries, ...removals];
}

function planBridge(want: DesiredOverlay, have: ActualLink | undefined, adds: KernelOp[], sets: KernelOp[], removals: KernelOp[]): void {
  if (have && have.kind !== 'bridge') {
    removals.unshift({ op: 'link-del', name: want.bridge });
    have = undefined;
  }
  if (!have) {
    adds.push({ op: 'bridge-add', name: want.bridge, mtu: want.mtu }, { op: 'link-set', name: want.bridge, up: true });
    return;
  }
  if (have.mtu !== want.mtu || !have.up) sets.push({ op: 'link-set', name: want.bridge, mtu: want.mtu, up: true });
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

function planEntries(want: DesiredOverlay, actual: ActualHost, out: KernelOp[]): void {
  // FDB: only the VXLAN device's own (self) entries with a destination are ours; the bridge's
  // learned and local entries are the kernel's business.
  const permanent = new Set(actual.fdb.filter((e) => e.dev === want.vxlan && e.dst !== undefined && e.permanent).map((e) => `${e.mac}>${e.dst}`));
  const wantFdb = new Map(want.fdb.map((e) => [e.mac, e.dst]));
  for (const [mac, dst] of wantFdb) if (!permanent.has(`${mac}>${dst}`)) out.push({ op: 'fdb-replace', dev: want.vxlan, mac, dst });
  const pairs = new Set(actual.fdb.filter((e) => e.dev === want.vxlan).map((e) => `${e.mac}>${e.dst}`));
  for (const e of actual.fdb) {
    if (e.dev !== want.vxlan || e.dst === undefined) continue;
    const dst = wantFdb.get(e.mac);
    if (dst === e.dst) continue; // wanted (made permanent by the replace above if it was not)
    if (dst !== undefined && !pairs.has(`${e.mac}>${dst}`)) continue; // the replace above rewrites this entry
    out.push({ op: 'fdb-del', dev: want.vxlan, mac: e.mac, dst: e.dst }); // unwanted, flood entries included
  }
  const neigh = new Map<string, { mac?: string; permanent: boolean }>();
  for (const n of actual.neigh) if (n.dev === want.vxlan) neigh.set(n.ip, n);
  const wantNeigh = new Map(want.neigh.map((n) => [n.ip, n.mac]));
  for (const [ip, mac] of wantNeigh) {
    const have = neigh.get(ip);
    if (!have || have.mac !== mac || !have.permanent) out.push({ op: 'neigh-replace', dev: want.vxlan, ip, mac });
  }
  for (const [ip] of neigh) if (!wantNeigh.has(ip)) out.push({ op: 'neigh-del', dev: want.vxlan, ip });
}
