/**
 * Kernel operations the agent's reconciler plans (pure) and the netlink layer renders into
 * `ip -batch -` / `bridge -batch -` lines (agent/src/netlink). Names are interface names in
 * the agent's own (host) network namespace.
 */
export type KernelOp =
  | { readonly op: 'bridge-add'; readonly name: string; readonly mtu: number; readonly mac?: string }
  | {
      readonly op: 'vxlan-add';
      readonly name: string;
      readonly vni: number;
      readonly port: number;
      readonly local: string;
      readonly mtu: number;
    }
  /** Sets attributes of an existing link; only the given fields change. */
  | {
      readonly op: 'link-set';
      readonly name: string;
      readonly mtu?: number;
      readonly master?: string;
      readonly up?: boolean;
      readonly mac?: string;
      /** VXLAN: learning off (ARP proxy cannot be changed on a live device: planned as a recreate). */
      readonly vxlanFlags?: boolean;
    }
  | { readonly op: 'link-del'; readonly name: string }
  | { readonly op: 'addr-add'; readonly dev: string; readonly cidr: string }
  | { readonly op: 'addr-del'; readonly dev: string; readonly cidr: string }
  /** A permanent FDB entry: frames for `mac` go to the VTEP `dst`. */
  | { readonly op: 'fdb-replace'; readonly dev: string; readonly mac: string; readonly dst: string }
  | { readonly op: 'fdb-del'; readonly dev: string; readonly mac: string; readonly dst?: string }
  /** A permanent neighbour (ARP) entry on the VXLAN device, answered by its ARP proxy. */
  | { readonly op: 'neigh-replace'; readonly dev: string; readonly ip: string; readonly mac: string }
  | { readonly op: 'neigh-del'; readonly dev: string; readonly ip: string };

/** Which batch tool runs an op. */
export function toolFor(op: KernelOp): 'ip' | 'bridge' {
  return op.op === 'fdb-replace' || op.op === 'fdb-del' ? 'bridge' : 'ip';
}
