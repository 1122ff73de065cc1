/**
 * The kernel's actual state as the agent reads it back (`ip -j -d link`, `ip -j addr`,
 * `bridge -j fdb`, `ip -j neigh`), parsed in agent/src/netlink into these plain shapes so the
 * diff against the desired state stays pure.
 */
export interface ActualLink {
  readonly name: string;
  readonly kind: string; // 'bridge' | 'vxlan' | 'veth' | '' (no link info) | ...
  readonly mtu: number;
  readonly master?: string;
  readonly up: boolean; // administratively up (IFF_UP)
  readonly mac: string;
  readonly vxlan?: {
    readonly vni: number;
    readonly port: number;
    readonly local: string;
    readonly learning: boolean;
    readonly proxy: boolean;
  };
}

export interface ActualAddr {
  readonly dev: string;
  readonly cidr: string; // address/prefix, e.g. 10.10.0.1/24
}

export interface ActualFdb {
  readonly dev: string;
  readonly mac: string;
  readonly dst?: string; // VTEP address for VXLAN entries
  readonly permanent: boolean;
}

export interface ActualNeigh {
  readonly dev: string;
  readonly ip: string;
  readonly mac?: string;
  readonly permanent: boolean;
}

export interface ActualHost {
  readonly links: readonly ActualLink[];
  readonly addrs: readonly ActualAddr[];
  readonly fdb: readonly ActualFdb[];
  readonly neigh: readonly ActualNeigh[];
}
