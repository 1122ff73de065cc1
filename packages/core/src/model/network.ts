import { invalidArgument } from '../errors.js';
import {
  type Cidr,
  cidrContains,
  cidrContainsCidr,
  cidrLast,
  formatCidr,
  formatIPv4,
  parseCidr,
  parseIPv4,
} from '../net/ipv4.js';
import { parseName } from './names.js';
import { checkLabelsSize } from './limits.js';

export const DRIVERS = ['overlay', 'bridge', 'macvlan'] as const;
export type Driver = (typeof DRIVERS)[number];

export const VNI_MIN = 1;
export const VNI_MAX = 16_777_215; // 24 bits
export const VNI_AUTO_START = 4096;

/** A network as stored in etcd and streamed to agents. Addresses are canonical strings. */
export interface Network {
  readonly id: string;
  readonly name: string;
  readonly driver: Driver;
  readonly vni: number; // 0 unless overlay
  /** The subnet; for a bridge network on every host (no `node`), the pool each host's subnet is cut from. */
  readonly subnet: string;
  /** '' for a pooled bridge network: each host's bridge takes the first address of its own subnet. */
  readonly gateway: string;
  readonly ipRange: string; // equals subnet when not restricted
  readonly auxAddresses: Readonly<Record<string, string>>;
  readonly attachable: boolean;
  readonly internal: boolean;
  readonly mtu: number; // 0 = agent default
  readonly parent: string;
  readonly options: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly createdAt: string;
  /** Bridge networks only: the one node it exists on ('' or absent = every node, each with its own subnet). */
  readonly node?: string;
  /** Pooled bridge networks: node key -> that host's subnet, cut from `subnet` when first needed. */
  readonly hostSubnets?: Readonly<Record<string, string>>;
}

/** What a user asked for, before validation (the CLI flags and the gRPC request carry this). */
export interface NetworkRequest {
  name: string;
  driver?: string;
  subnet?: string;
  gateway?: string;
  ipRange?: string;
  auxAddresses?: Record<string, string>;
  attachable?: boolean;
  internal?: boolean;
  options?: Record<string, string>;
  labels?: Record<string, string>;
  /** Bridge networks: the one node it lives on (`--node`). */
  node?: string;
}

/** A validated request: everything but the subnet and VNI, which may still need choosing. */
export interface NetworkSpec {
  readonly name: string;
  readonly driver: Driver;
  readonly subnet?: Cidr;
  readonly gateway?: number;
  readonly ipRange?: Cidr;
  readonly auxAddresses: Readonly<Record<string, number>>;
  readonly attachable: boolean;
  readonly internal: boolean;
  readonly mtu: number;
  readonly vni?: number;
  readonly parent: string;
  readonly options: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  readonly node: string; // '' = every node (bridge networks: a subnet per host from the pool)
}

const OPTION_ALIASES: Record<string, string> = {
  mtu: 'mtu',
  'com.docker.network.driver.mtu': 'mtu',
  vni: 'vni',
  'com.docker.network.driver.overlay.vxlanid_list': 'vni',
  parent: 'parent',
};

export function parseNetworkRequest(req: NetworkRequest): NetworkSpec {
  const name = parseName(req.name, 'network');
  const driverText = (req.driver ?? '').trim() || 'overlay';
  if (!(DRIVERS as readonly string[]).includes(driverText)) {
    throw invalidArgument(`unknown driver "${driverText}"; use one of ${DRIVERS.join(', ')}`);
  }
  const driver = driverText as Driver;
  checkLabelsSize(req.labels, 'labels');
  checkLabelsSize(req.options, 'options');
  checkLabelsSize(req.auxAddresses, 'aux addresses');

  const options: Record<string, string> = {};
  for (const [rawKey, value] of Object.entries(req.options ?? {})) {
    const key = OPTION_ALIASES[rawKey];
    if (key === undefined) {
      throw invalidArgument(`unknown option "${rawKey}"; known options are mtu, vni (overlay) and parent (macvlan)`);
    }
    options[key] = value;
  }
  const mtu = options.mtu === undefined ? 0 : parseIntInRange(options.mtu, 'option mtu', 68, 65535);
  let vni: number | undefined;
  if (options.vni !== undefined) {
    if (driver !== 'overlay') throw invalidArgument(`option vni applies to overlay networks only, not ${driver}`);
    vni = parseIntInRange(options.vni, 'option vni', VNI_MIN, VNI_MAX);
  }
  const parent = options.parent ?? '';
  if (driver === 'macvlan' && parent === '') {
    throw invalidArgument('a macvlan network needs its parent interface; add -o parent=IFACE (e.g. -o parent=eth0)');
  }
  if (driver !== 'macvlan' && parent !== '') {
    throw invalidArgument(`option parent applies to macvlan networks only, not ${driver}`);
  }
  if (parent !== '' && !/^[A-Za-z0-9_.@-]{1,15}$/.test(parent)) {
    throw invalidArgument(`parent "${parent}" is not a valid interface name (1-15 characters)`);
  }

  const subnet = req.subnet ? parseSubnet(req.subnet) : undefined;
  const needSubnet = (flag: string): Cidr => {
    if (subnet === undefined) throw invalidArgument(`${flag} needs --subnet; give the subnet it belongs to`);
    return subnet;
  };
  let gateway: number | undefined;
  if (req.gateway) {
    const within = needSubnet('--gateway');
    gateway = parseIPv4(req.gateway, 'gateway');
    checkHostAddress(within, gateway, `gateway ${req.gateway}`);
  }
  let ipRange: Cidr | undefined;
  if (req.ipRange) {
    const within = needSubnet('--ip-range');
    ipRange = parseCidr(req.ipRange, 'ip-range');
    if (!cidrContainsCidr(within, ipRange)) {
      throw invalidArgument(`ip-range ${req.ipRange} is not inside subnet ${formatCidr(within)}; pick a range within it`);
    }
  }
  const auxAddresses: Record<string, number> = {};
  for (const [auxName, text] of Object.entries(req.auxAddresses ?? {})) {
    const within = needSubnet('--aux-address');
    if (auxName === '') throw invalidArgument(`aux-address "=${text}" has no name; write name=IP`);
    const addr = parseIPv4(text, `aux-address ${auxName}`);
    checkHostAddress(within, addr, `aux-address ${auxName}=${text}`);
    if (gateway === addr) throw invalidArgument(`aux-address ${auxName}=${text} is the gateway; pick another address`);
    auxAddresses[auxName] = addr;
  }
  if (driver === 'macvlan' && subnet === undefined) {
    throw invalidArgument('a macvlan network shares the host segment; give its --subnet and --gateway');
  }
  const node = req.node?.trim() ? parseName(req.node, 'node') : '';
  if (node !== '' && driver !== 'bridge') {
    throw invalidArgument(`--node applies to bridge networks only; a ${driver} network spans every host (drop --node or use -d bridge)`);
  }
  if (driver === 'bridge' && node === '') {
    // Each host cuts its own subnet from the pool and its bridge takes the first address.
    if (gateway !== undefined) {
      throw invalidArgument('--gateway on a bridge network needs --node NAME: without it every host gets its own subnet from the pool, its bridge taking the first address');
    }
    if (ipRange !== undefined) {
      throw invalidArgument('--ip-range on a bridge network needs --node NAME: without it every host gets its own subnet from the pool');
    }
  }

  return {
    name,
    driver,
    ...(subnet && { subnet }),
    ...(gateway !== undefined && { gateway }),
    ...(ipRange && { ipRange }),
    auxAddresses,
    attachable: req.attachable ?? false,
    internal: req.internal ?? false,
    mtu,
    ...(vni !== undefined && { vni }),
    parent,
    options,
    labels: { ...(req.labels ?? {}) },
    node,
  };
}

function parseSubnet(text: string): Cidr {
  const subnet = parseCidr(text, 'subnet');
  if (subnet.prefix > 30) {
    throw invalidArgument(
      `subnet ${text} is a /${subnet.prefix}: it leaves no room for a gateway and endpoints; use /30 or larger (a /24 is typical)`,
    );
  }
  return subnet;
}

function checkHostAddress(subnet: Cidr, addr: number, what: string): void {
  if (!cidrContains(subnet, addr)) {
    throw invalidArgument(`${what} is outside subnet ${formatCidr(subnet)}; pick an address inside it`);
  }
  if (addr === subnet.base) throw invalidArgument(`${what} is the subnet's network address; pick a host address`);
  if (addr === cidrLast(subnet)) throw invalidArgument(`${what} is the subnet's broadcast address; pick a host address`);
}

function parseIntInRange(text: string, what: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^[0-9]+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalidArgument(`${what} "${text}" is out of range; use a whole number from ${min} to ${max}`);
  }
  return value;
}

/** Turns a validated spec plus the choices the manager made into the stored network. */
export function buildNetwork(
  spec: NetworkSpec,
  chosen: { id: string; subnet: Cidr; vni: number; createdAt: string; hostSubnets?: Readonly<Record<string, string>> },
): Network {
  const subnet = chosen.subnet;
  const pooled = spec.driver === 'bridge' && spec.node === '';
  const gateway = spec.gateway ?? subnet.base + 1;
  for (const [auxName, addr] of Object.entries(spec.auxAddresses)) {
    if (!pooled && addr === gateway) {
      throw invalidArgument(`aux-address ${auxName} is the default gateway ${formatIPv4(gateway)}; set --gateway to another address`);
    }
  }
  const aux: Record<string, string> = {};
  for (const [auxName, addr] of Object.entries(spec.auxAddresses)) aux[auxName] = formatIPv4(addr);
  return {
    id: chosen.id,
    name: spec.name,
    driver: spec.driver,
    vni: spec.driver === 'overlay' ? chosen.vni : 0,
    subnet: formatCidr(subnet),
    gateway: pooled ? '' : formatIPv4(gateway),
    ipRange: formatCidr(spec.ipRange ?? subnet),
    auxAddresses: aux,
    attachable: spec.attachable,
    internal: spec.internal,
    mtu: spec.mtu,
    parent: spec.parent,
    options: spec.options,
    labels: spec.labels,
    createdAt: chosen.createdAt,
    ...(spec.driver === 'bridge' && { node: spec.node, hostSubnets: { ...(chosen.hostSubnets ?? {}) } }),
  };
}
