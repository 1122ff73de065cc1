import type { DesiredHost } from '../desired/host.js';
import { isOwnedDevice } from '../desired/host.js';
import type { ActualHost, ActualLink } from './actual.js';

/**
 * What the kernel holds once planOverlays(desired, actual) has been applied without error
 * (pure). The reconciler plans change-triggered runs against this instead of reading the
 * whole kernel back, so a change costs its own entries rather than a read of every entry on
 * the host; the periodic resync still reads the kernel, which is where drift is caught.
 * planOverlays(desired, projectApplied(desired, actual)) is empty: the projection is converged.
 */
export function projectApplied(desired: DesiredHost, actual: ActualHost): ActualHost {
  const overlayDevs = new Set<string>();
  for (const o of desired.overlays) overlayDevs.add(o.bridge).add(o.vxlan);
  const veths = new Map<string, { bridge: string; mtu: number }>();
  for (const sb of desired.sandboxes) for (const i of sb.interfaces) if (i.hostVeth !== '') veths.set(i.hostVeth, { bridge: i.bridge, mtu: i.mtu });
  for (const p of desired.plugged ?? []) veths.set(p.hostVeth, { bridge: p.bridge, mtu: p.mtu });
  const gone = (name: string) => isOwnedDevice(name) && !overlayDevs.has(name) && !veths.has(name);

  const before = new Map(actual.links.map((l) => [l.name, l]));
  const links: ActualLink[] = actual.links.filter((l) => !gone(l.name) && !overlayDevs.has(l.name));
  for (const [i, l] of links.entries()) {
    const v = veths.get(l.name);
    if (v) links[i] = { ...l, master: v.bridge, mtu: v.mtu, up: true };
  }
  for (const o of desired.overlays) {
    links.push({ name: o.bridge, kind: 'bridge', mtu: o.mtu, up: true, mac: o.bridgeMac });
    if (o.vxlan === '') continue; // a local bridge network
    links.push({
      name: o.vxlan,
      kind: 'vxlan',
      mtu: o.mtu,
      up: true,
      master: o.bridge,
      mac: before.get(o.vxlan)?.mac ?? '',
      vxlan: { vni: o.vni, port: o.port, local: o.local, learning: false, proxy: true },
    });
  }

  const bridges = new Set(desired.overlays.map((o) => o.bridge));
  const vxlans = new Set(desired.overlays.map((o) => o.vxlan));
  const keep = (dev: string) => !gone(dev);
  return {
    links,
    addrs: [
      ...actual.addrs.filter((a) => keep(a.dev) && !bridges.has(a.dev)),
      ...desired.overlays.map((o) => ({ dev: o.bridge, cidr: o.gatewayCidr })),
    ],
    fdb: [
      // the bridge's own (non-dst) entries are the kernel's; the VXLAN dst entries are exactly ours
      ...actual.fdb.filter((e) => keep(e.dev) && !(vxlans.has(e.dev) && e.dst !== undefined)),
      ...desired.overlays.flatMap((o) => o.fdb.map((e) => ({ dev: o.vxlan, mac: e.mac, dst: e.dst, permanent: true }))),
    ],
    neigh: [
      ...actual.neigh.filter((n) => keep(n.dev) && !vxlans.has(n.dev)),
      ...desired.overlays.flatMap((o) => o.neigh.map((n) => ({ dev: o.vxlan, ip: n.ip, mac: n.mac, permanent: true }))),
    ],
  };
}
