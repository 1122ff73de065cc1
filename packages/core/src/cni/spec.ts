/**
 * The CNI specification's side of the ctnet plugin (spec 1.1.0, and the older versions
 * runtimes still send): the call parsed from environment and stdin, the result and the
 * error objects. Pure, and free of the rest of core, so the plugin's shim loads it alone.
 */

/** Versions this plugin speaks; VERSION lists them, a config naming another is refused (code 1). */
export const CNI_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const CNI_LATEST = '1.1.0';

/** The spec's error codes (and ours, from 100 as it asks). */
export const CniCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  LimitedConnectivity: 51,
  /** ctnet: the network's address range has no free address. */
  AddressesExhausted: 100,
  /** ctnet: CHECK found the namespace differing from the recorded result. */
  CheckFailed: 101,
  /** ctnet: the manager refused the attachment (the message says why). */
  Refused: 102,
} as const;

export class CniError extends Error {
  override readonly name = 'CniError';
  constructor(
    readonly code: number,
    message: string,
    readonly details = '',
  ) {
    super(message);
  }
}

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC' | 'VERSION';
const COMMANDS: readonly string[] = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC', 'VERSION'];

export interface PortMappingConfig {
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: 'tcp' | 'udp';
  readonly hostIP: string;
}

/** The network configuration ctnet reads (a conflist entry with "type": "ctnet", name and version filled in by the runtime). */
export interface CniConfig {
  readonly cniVersion: string;
  /** The ctnet network's name. */
  readonly name: string;
  readonly agentSocket: string;
  readonly waitConverged: boolean;
  /** From args.cni: a name to register in DNS. */
  readonly argsName: string;
  readonly portMappings: readonly PortMappingConfig[];
  /** GC's list of attachments to keep; undefined when the key is absent. */
  readonly validAttachments: readonly { readonly containerId: string; readonly ifname: string }[] | undefined;
  readonly prevResult: unknown;
}

export interface CniCall {
  readonly command: CniCommand;
  readonly containerId: string;
  readonly netns: string;
  readonly ifname: string;
  readonly args: Readonly<Record<string, string>>;
  readonly config: CniConfig;
}

export const DEFAULT_AGENT_SOCKET = '/run/ctnet/cni.sock';

type Env = Readonly<Record<string, string | undefined>>;

/** The command alone, for the shim (VERSION needs no config, and errors need a version). */
export function parseCommand(env: Env): CniCommand {
  const cmd = env.CNI_COMMAND ?? '';
  if (!COMMANDS.includes(cmd)) {
    throw new CniError(CniCode.InvalidEnvironment, `CNI_COMMAND "${cmd}" is not one of ${COMMANDS.join(', ')}`, 'set CNI_COMMAND as the CNI specification says');
  }
  return cmd as CniCommand;
}

/** CNI_ARGS: "K=V;K=V". */
export function parseCniArgs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CniError(CniCode.InvalidEnvironment, `CNI_ARGS entry "${pair}" is not of the form KEY=VALUE`, 'CNI_ARGS is KEY=VALUE pairs separated by ";"');
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

const object = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseCniConfig(stdin: string): CniConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CniCode.DecodeFailure, `the network configuration on stdin is not JSON: ${(err as Error).message}`, 'pass the network configuration (one conflist entry) on stdin');
  }
  if (!object(raw)) throw new CniError(CniCode.DecodeFailure, 'the network configuration on stdin is not a JSON object');
  const version = raw.cniVersion;
  if (typeof version !== 'string' || version === '') throw new CniError(CniCode.InvalidConfig, 'the network configuration has no "cniVersion"', `set "cniVersion", e.g. "${CNI_LATEST}"`);
  if (!(CNI_VERSIONS as readonly string[]).includes(version)) {
    throw new CniError(CniCode.IncompatibleVersion, `cniVersion ${version} is not supported; ctnet supports ${CNI_VERSIONS.join(', ')}`, `set "cniVersion": "${CNI_LATEST}"`);
  }
  const name = raw.name;
  if (typeof name !== 'string' || name === '') throw new CniError(CniCode.InvalidConfig, 'the network configuration has no "name"', 'set "name" to the ctnet network to attach to (see "ctmgr network ls")');
  const socket = raw.agentSocket ?? DEFAULT_AGENT_SOCKET;
  if (typeof socket !== 'string' || !socket.startsWith('/')) throw new CniError(CniCode.InvalidConfig, `"agentSocket" must be an absolute path (default ${DEFAULT_AGENT_SOCKET})`);
  const wait = raw.waitConverged ?? false;
  if (typeof wait !== 'boolean') throw new CniError(CniCode.InvalidConfig, '"waitConverged" must be true or false');
  const args = object(raw.args) && object(raw.args.cni) ? raw.args.cni : {};
  let argsName = '';
  if (typeof args.name === 'string') argsName = args.name;
  else if (Array.isArray(args.labels)) {
    const label = args.labels.find((l): l is { key: string; value: string } => object(l) && l.key === 'name' && typeof l.value === 'string');
    if (label) argsName = label.value;
  }
  const rc = object(raw.runtimeConfig) ? raw.runtimeConfig : {};
  return {
    cniVersion: version,
    name,
    agentSocket: socket,
    waitConverged: wait,
    argsName,
    portMappings: parsePortMappings(rc.portMappings),
    validAttachments: parseValidAttachments(raw['cni.dev/valid-attachments']),
    prevResult: raw.prevResult,
  };
}

function parsePortMappings(v: unknown): PortMappingConfig[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new CniError(CniCode.InvalidConfig, 'runtimeConfig.portMappings must be a list');
  return v.map((m, i) => {
    const port = (p: unknown, what: string): number => {
      if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) throw new CniError(CniCode.InvalidConfig, `runtimeConfig.portMappings[${i}].${what} must be a port (1-65535)`);
      return p;
    };
    if (!object(m)) throw new CniError(CniCode.InvalidConfig, `runtimeConfig.portMappings[${i}] must be an object`);
    const protocol = typeof m.protocol === 'string' && m.protocol !== '' ? m.protocol.toLowerCase() : 'tcp';
    if (protocol !== 'tcp' && protocol !== 'udp') throw new CniError(CniCode.InvalidConfig, `runtimeConfig.portMappings[${i}].protocol "${String(m.protocol)}" is not tcp or udp`);
    const hostIP = typeof m.hostIP === 'string' && m.hostIP !== '0.0.0.0' ? m.hostIP : '';
    return { hostPort: port(m.hostPort, 'hostPort'), containerPort: port(m.containerPort, 'containerPort'), protocol, hostIP };
  });
}

function parseValidAttachments(v: unknown): CniConfig['validAttachments'] {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new CniError(CniCode.InvalidConfig, '"cni.dev/valid-attachments" must be a list');
  return v.map((a, i) => {
    if (!object(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') {
      throw new CniError(CniCode.InvalidConfig, `"cni.dev/valid-attachments"[${i}] must have "containerID" and "ifname"`);
    }
    return { containerId: a.containerID, ifname: a.ifname };
  });
}

/** Parses a whole call; which variables are required depends on the command, as the spec says. */
export function parseCniCall(env: Env, stdin: string): CniCall {
  const command = parseCommand(env);
  const config = parseCniConfig(stdin);
  const need = (name: string): string => {
    const v = env[name] ?? '';
    if (v === '') throw new CniError(CniCode.InvalidEnvironment, `${name} is not set; ${command} needs it`, `set ${name} as the CNI specification says`);
    return v;
  };
  const perAttachment = command === 'ADD' || command === 'DEL' || command === 'CHECK';
  const containerId = perAttachment ? need('CNI_CONTAINERID') : (env.CNI_CONTAINERID ?? '');
  // DEL may come after the namespace is gone: an empty CNI_NETNS is allowed there.
  const netns = command === 'ADD' || command === 'CHECK' ? need('CNI_NETNS') : (env.CNI_NETNS ?? '');
  const ifname = perAttachment ? need('CNI_IFNAME') : (env.CNI_IFNAME ?? '');
  if (netns !== '' && !netns.startsWith('/')) throw new CniError(CniCode.InvalidEnvironment, `CNI_NETNS "${netns}" is not an absolute path`, 'CNI_NETNS names a network namespace, e.g. /var/run/netns/NAME or /proc/PID/ns/net');
  if (perAttachment && !/^[A-Za-z0-9_.-]{1,15}$/.test(ifname)) {
    throw new CniError(CniCode.InvalidEnvironment, `CNI_IFNAME "${ifname}" is not a valid interface name`, '1-15 of letters, digits, "_", "." and "-", e.g. eth0');
  }
  // Verbs came with versions: CHECK with 0.4.0, STATUS and GC with 1.1.0.
  const since = command === 'CHECK' ? '0.4.0' : command === 'STATUS' || command === 'GC' ? '1.1.0' : '0.0.0';
  if (compareVersions(config.cniVersion, since) < 0) {
    throw new CniError(CniCode.IncompatibleVersion, `${command} needs cniVersion ${since} or later; the configuration says ${config.cniVersion}`, `set "cniVersion": "${CNI_LATEST}"`);
  }
  if (command === 'CHECK' && config.prevResult === undefined) throw new CniError(CniCode.InvalidConfig, 'CHECK needs "prevResult" in the configuration');
  return { command, containerId, netns, ifname, args: parseCniArgs(env.CNI_ARGS ?? ''), config };
}

const compareVersions = (a: string, b: string): number => {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
};

/** The name a runtime's container is known by in DNS: the pod's, a label's, else the container id's. */
export function cniDnsName(call: Pick<CniCall, 'args' | 'config' | 'containerId'>): string {
  const raw = call.args.K8S_POD_NAME || call.config.argsName || call.containerId;
  const label = raw.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+/, '').slice(0, 63).replace(/-+$/, '');
  return label;
}

export interface CniAttachmentFacts {
  readonly hostVeth: string; // '' for macvlan
  readonly ifname: string;
  readonly mac: string;
  readonly sandbox: string; // the namespace path, as the runtime gave it
  readonly cidr: string;
  readonly gateway: string;
  /** The embedded resolver (the gateway of a network on a bridge); '' on macvlan, whose gateway is the segment's router. */
  readonly nameserver: string;
}

/**
 * The ADD result in the caller's version (pre-1.0 results carry "version": "4" on each
 * address). Chained after another plugin, what that one reported (prevResult) comes first
 * and is kept, as the spec asks; our address points at our interface past its own.
 */
export function cniResult(version: string, a: CniAttachmentFacts, prevResult?: unknown): Record<string, unknown> {
  const prev = object(prevResult) ? prevResult : {};
  const list = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v.filter(object) : []);
  const interfaces = list(prev.interfaces);
  if (a.hostVeth) interfaces.push({ name: a.hostVeth });
  interfaces.push({ name: a.ifname, mac: a.mac, sandbox: a.sandbox });
  const old = version.startsWith('0.');
  const dns = object(prev.dns) ? prev.dns : {};
  const servers = Array.isArray(dns.nameservers) ? dns.nameservers.filter((n): n is string => typeof n === 'string') : [];
  return {
    cniVersion: version,
    interfaces,
    ips: [...list(prev.ips), { ...(old && { version: '4' }), address: a.cidr, gateway: a.gateway, interface: interfaces.length - 1 }],
    routes: [...list(prev.routes), { dst: '0.0.0.0/0', gw: a.gateway }],
    dns: { ...dns, nameservers: a.nameserver ? [...servers.filter((n) => n !== a.nameserver), a.nameserver] : servers },
  };
}

export function cniErrorResult(version: string, err: CniError): Record<string, unknown> {
  return { cniVersion: version, code: err.code, msg: err.message, ...(err.details && { details: err.details }) };
}

export const cniVersionResult = (): Record<string, unknown> => ({ cniVersion: CNI_LATEST, supportedVersions: [...CNI_VERSIONS] });

/** The config's version when it can be read, for an error's "cniVersion". */
export function versionOf(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && (CNI_VERSIONS as readonly string[]).includes(v) ? v : CNI_LATEST;
  } catch {
    return CNI_LATEST;
  }
}

/**
 * The shim's wire to the agent's socket: one JSON line each way. The agent answers with what
 * the plugin must print and whether it succeeded.
 */
export interface CniSocketRequest {
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: string;
}
export interface CniSocketResponse {
  readonly ok: boolean;
  readonly output: string;
}
