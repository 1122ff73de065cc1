import { invalidArgument } from '../errors.js';
import { parseMac } from '../model/endpoint.js';
import { formatCidr, parseCidr, parseIPv4, type Cidr } from '../net/ipv4.js';

/**
 * Docker's remote network and IPAM driver protocol (libnetwork's drivers/remote/api and
 * ipams/remote/api, as dockerd 20.10–28 sends it), parsed at the boundary into plain values.
 * Every call is `POST /<Method>` with a JSON body; an answer is JSON with `Err` (network
 * driver) or `Error` (IPAM) set on failure, which the docker CLI shows as "remote: <msg>".
 * Pure: the agent's socket server and its handlers use it.
 */

/** The network option the mirror sets on networks it creates in a host's Docker: which ctnet network it is. */
export const DOCKER_NETWORK_OPTION = 'ctnet.network';
/** The label a cluster network made through a host's Docker carries (value "docker"): node certificates may remove only those. */
export const DOCKER_ORIGIN_LABEL = 'ctnet.origin';
/** RequestAddress for a network's gateway carries this option value. */
export const DOCKER_GATEWAY_REQUEST = 'com.docker.network.gateway';
/** Network options the driver understands (`docker network create -o KEY=VALUE`). */
export const DOCKER_KNOWN_OPTIONS = ['mtu', 'com.docker.network.driver.mtu', 'vni', 'com.docker.network.driver.overlay.vxlanid_list', DOCKER_NETWORK_OPTION] as const;

export type DockerMethod =
  | 'Plugin.Activate'
  | 'NetworkDriver.GetCapabilities'
  | 'NetworkDriver.CreateNetwork'
  | 'NetworkDriver.AllocateNetwork'
  | 'NetworkDriver.FreeNetwork'
  | 'NetworkDriver.DeleteNetwork'
  | 'NetworkDriver.CreateEndpoint'
  | 'NetworkDriver.EndpointOperInfo'
  | 'NetworkDriver.DeleteEndpoint'
  | 'NetworkDriver.Join'
  | 'NetworkDriver.Leave'
  | 'NetworkDriver.ProgramExternalConnectivity'
  | 'NetworkDriver.RevokeExternalConnectivity'
  | 'NetworkDriver.DiscoverNew'
  | 'NetworkDriver.DiscoverDelete'
  | 'IpamDriver.GetCapabilities'
  | 'IpamDriver.GetDefaultAddressSpaces'
  | 'IpamDriver.RequestPool'
  | 'IpamDriver.ReleasePool'
  | 'IpamDriver.RequestAddress'
  | 'IpamDriver.ReleaseAddress';

const METHODS: ReadonlySet<string> = new Set<DockerMethod>([
  'Plugin.Activate',
  'NetworkDriver.GetCapabilities',
  'NetworkDriver.CreateNetwork',
  'NetworkDriver.AllocateNetwork',
  'NetworkDriver.FreeNetwork',
  'NetworkDriver.DeleteNetwork',
  'NetworkDriver.CreateEndpoint',
  'NetworkDriver.EndpointOperInfo',
  'NetworkDriver.DeleteEndpoint',
  'NetworkDriver.Join',
  'NetworkDriver.Leave',
  'NetworkDriver.ProgramExternalConnectivity',
  'NetworkDriver.RevokeExternalConnectivity',
  'NetworkDriver.DiscoverNew',
  'NetworkDriver.DiscoverDelete',
  'IpamDriver.GetCapabilities',
  'IpamDriver.GetDefaultAddressSpaces',
  'IpamDriver.RequestPool',
  'IpamDriver.ReleasePool',
  'IpamDriver.RequestAddress',
  'IpamDriver.ReleaseAddress',
]);

/** The method a request path names, or undefined for a path that is no method of ours. */
export function parseDockerMethod(path: string): DockerMethod | undefined {
  const m = path.replace(/^\/+/, '').split('?')[0]!;
  return METHODS.has(m) ? (m as DockerMethod) : undefined;
}

/** Whether an error answer to this method goes in `Error` (IPAM) rather than `Err`. */
export const isIpamMethod = (m: DockerMethod): boolean => m.startsWith('IpamDriver.');

export const dockerErrorBody = (m: DockerMethod | undefined, message: string): Record<string, string> =>
  m !== undefined && isIpamMethod(m) ? { Error: message } : { Err: message };

// ---------- bodies ----------

type Json = Record<string, unknown>;

/** The body as a JSON object; an empty body is an empty object (calls without arguments). */
export function parseDockerBody(text: string): Json {
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`the request body is not JSON (${err instanceof Error ? err.message : String(err)}); dockerd sends JSON: is something else calling the ctnet plugin socket?`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalidArgument('the request body must be a JSON object');
  return v as Json;
}

const str = (body: Json, key: string, required = false): string => {
  const v = body[key];
  if (v === undefined || v === null || v === '') {
    if (required) throw invalidArgument(`the request has no ${key}`);
    return '';
  }
  if (typeof v !== 'string') throw invalidArgument(`${key} must be a string`);
  if (v.length > 4096) throw invalidArgument(`${key} is too long`);
  return v;
};

const obj = (body: Json, key: string): Json => {
  const v = body[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidArgument(`${key} must be an object`);
  return v as Json;
};

const ID = /^[0-9a-f]{12,64}$/i;
const id = (body: Json, key: string): string => {
  const v = str(body, key, true);
  if (!ID.test(v)) throw invalidArgument(`${key} "${v.slice(0, 80)}" is not a Docker id (hex)`);
  return v.toLowerCase();
};

/** "10.0.0.5/24" or "10.0.0.5" → the address alone. */
const bareIp = (text: string, what: string): string => {
  const ip = text.split('/')[0]!.trim();
  parseIPv4(ip, what);
  return ip;
};

// ---------- IPAM ----------

export interface PoolRequest {
  readonly subnet?: Cidr; // --subnet
  readonly ipRange?: Cidr; // --ip-range
  readonly options: Readonly<Record<string, string>>; // --ipam-opt
  readonly v6: boolean;
}

export function parsePoolRequest(body: Json): PoolRequest {
  const pool = str(body, 'Pool');
  const sub = str(body, 'SubPool');
  const options = stringMap(obj(body, 'Options'), 'IPAM options');
  return {
    ...(pool && { subnet: parseCidr(pool, '--subnet') }),
    ...(sub && { ipRange: parseCidr(sub, '--ip-range') }),
    options,
    v6: body.V6 === true,
  };
}

/** The pool id names the subnet: subnets are unique in the cluster, so it needs no state to resolve. */
export const poolId = (subnet: Cidr): string => `ctnet/${formatCidr(subnet)}`;

export function parsePoolId(body: Json): Cidr {
  const v = str(body, 'PoolID', true);
  if (!v.startsWith('ctnet/')) throw invalidArgument(`pool ${v.slice(0, 80)} is not one of ctnet's`);
  return parseCidr(v.slice('ctnet/'.length), 'pool');
}

export interface AddressRequest {
  readonly pool: Cidr;
  readonly address: string; // '' = any
  readonly gateway: boolean;
  readonly mac: string; // '' = none asked for
}

export function parseAddressRequest(body: Json): AddressRequest {
  const pool = parsePoolId(body);
  const options = stringMap(obj(body, 'Options'), 'address options');
  const address = str(body, 'Address');
  const macText = options['com.docker.network.endpoint.macaddress'] ?? '';
  return {
    pool,
    address: address ? bareIp(address, 'the requested address') : '',
    gateway: options.RequestAddressType === DOCKER_GATEWAY_REQUEST,
    mac: macText ? parseMac(macText) : '',
  };
}

// ---------- network driver ----------

export interface NetworkCreate {
  readonly networkId: string;
  readonly subnet: Cidr;
  readonly gateway: string;
  readonly internal: boolean;
  /** -o options, checked against DOCKER_KNOWN_OPTIONS. */
  readonly options: Readonly<Record<string, string>>;
  /** The ctnet network the mirror made this Docker network for; '' when a user made it through Docker. */
  readonly ctnetNetwork: string;
  /** The IPAM driver's address space: "ctnet" when ctnet hands out the addresses. */
  readonly addressSpace: string;
}

export function parseNetworkCreate(body: Json): NetworkCreate {
  const networkId = id(body, 'NetworkID');
  const options = obj(body, 'Options');
  const generic = stringMap(obj(options, 'com.docker.network.generic'), 'network options');
  const unknown = Object.keys(generic).filter((k) => !(DOCKER_KNOWN_OPTIONS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw invalidArgument(`unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} for the ctnet driver; it knows -o mtu=N and -o vni=N`);
  }
  if (options['com.docker.network.enable_ipv6'] === true || (Array.isArray(body.IPv6Data) && body.IPv6Data.length > 0)) {
    throw invalidArgument('ctnet networks are IPv4 only; create the network without --ipv6');
  }
  const v4 = body.IPv4Data;
  if (!Array.isArray(v4) || v4.length !== 1 || typeof v4[0] !== 'object' || v4[0] === null) {
    throw invalidArgument('a ctnet network has exactly one IPv4 subnet; pass one --subnet (or none, and ctnet picks one)');
  }
  const data = v4[0] as Json;
  const subnet = parseCidr(str(data, 'Pool', true), 'subnet');
  if (Object.keys(obj(data, 'AuxAddresses')).length > 0) {
    throw invalidArgument('--aux-address is not taken through Docker; create the network with "ctmgr network create --aux-address …" and it appears in Docker by itself');
  }
  const gwText = str(data, 'Gateway');
  return {
    networkId,
    subnet,
    gateway: gwText ? bareIp(gwText, 'the gateway') : '',
    internal: options['com.docker.network.internal'] === true,
    options: generic,
    ctnetNetwork: generic[DOCKER_NETWORK_OPTION] ?? '',
    addressSpace: str(data, 'AddressSpace'),
  };
}

export const parseNetworkId = (body: Json): string => id(body, 'NetworkID');

export interface EndpointCreate {
  readonly networkId: string;
  readonly endpointId: string;
  readonly address: string; // bare IPv4; '' when Docker's IPAM gave none (never with ctnet's IPAM)
  readonly mac: string; // '' when Docker leaves it to the driver
}

export function parseEndpointCreate(body: Json): EndpointCreate {
  const itf = obj(body, 'Interface');
  const address = str(itf, 'Address');
  const mac = str(itf, 'MacAddress');
  if (str(itf, 'AddressIPv6')) throw invalidArgument('ctnet networks are IPv4 only');
  return {
    networkId: id(body, 'NetworkID'),
    endpointId: id(body, 'EndpointID'),
    address: address ? bareIp(address, 'the endpoint address') : '',
    mac: mac ? parseMac(mac) : '',
  };
}

export interface EndpointRef {
  readonly networkId: string;
  readonly endpointId: string;
}

export const parseEndpointRef = (body: Json): EndpointRef => ({ networkId: id(body, 'NetworkID'), endpointId: id(body, 'EndpointID') });

export interface JoinRequest extends EndpointRef {
  readonly sandboxKey: string;
}

export function parseJoin(body: Json): JoinRequest {
  const sandboxKey = str(body, 'SandboxKey', true);
  if (!sandboxKey.startsWith('/')) throw invalidArgument('SandboxKey must be an absolute path');
  return { ...parseEndpointRef(body), sandboxKey };
}

/** A published port as Docker passes it (com.docker.network.portmap). */
export interface DockerPortMapping {
  readonly protocol: 'tcp' | 'udp';
  readonly containerPort: number;
  readonly hostIp: string;
  readonly hostPort: number; // 0 = Docker left it to the driver
}

const PROTOS: Record<number, 'tcp' | 'udp'> = { 6: 'tcp', 17: 'udp' };

export function parsePortMap(options: Json): DockerPortMapping[] {
  const list = options['com.docker.network.portmap'];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list) || list.length > 1024) throw invalidArgument('com.docker.network.portmap must be a list of at most 1024 mappings');
  return list.map((raw: unknown) => {
    const p = (raw ?? {}) as Json;
    const protocol = PROTOS[Number(p.Proto)];
    if (!protocol) throw invalidArgument(`port mapping protocol ${String(p.Proto)} is not supported by ctnet; publish tcp or udp`);
    const port = (v: unknown, what: string, zero: boolean) => {
      const n = Number(v ?? 0);
      if (!Number.isInteger(n) || n < (zero ? 0 : 1) || n > 65535) throw invalidArgument(`${what} ${String(v)} is not a port`);
      return n;
    };
    const hostIp = typeof p.HostIP === 'string' && p.HostIP !== '' && p.HostIP !== '0.0.0.0' ? bareIp(p.HostIP, 'the host address') : '';
    const hostPort = port(p.HostPort, 'host port', true);
    if (Number(p.HostPortEnd ?? hostPort) !== hostPort && hostPort !== 0) throw invalidArgument('host port ranges are not supported by ctnet; publish one port per mapping');
    return { protocol, containerPort: port(p.Port, 'container port', false), hostIp, hostPort };
  });
}

/** ProgramExternalConnectivity: the endpoint and its -p. */
export const parseProgramConnectivity = (body: Json): EndpointRef & { readonly ports: DockerPortMapping[] } => ({ ...parseEndpointRef(body), ports: parsePortMap(obj(body, 'Options')) });

function stringMap(o: Json, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = Object.entries(o);
  if (entries.length > 256) throw invalidArgument(`too many ${what}`);
  for (const [k, v] of entries) {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw invalidArgument(`${what}: "${k}" must be a string`);
    out[k] = String(v);
  }
  return out;
}
