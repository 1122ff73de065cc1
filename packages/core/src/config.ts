import { invalidArgument } from './errors.js';
import { type Cidr, parseCidr, parseIPv4, tryParseIPv4 } from './net/ipv4.js';

/**
 * Parsing of configuration values. Each main.ts gathers raw strings (flags, then CTNET_*
 * environment variables) and passes them here once; the result is validated and frozen.
 */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export function parseHostPort(text: string, what: string): HostPort {
  const trimmed = text.trim();
  const colon = trimmed.lastIndexOf(':');
  const host = colon < 0 ? trimmed : trimmed.slice(0, colon);
  const portText = colon < 0 ? '' : trimmed.slice(colon + 1);
  const port = Number(portText);
  if (host === '' || !/^[0-9]+$/.test(portText) || port < 1 || port > 65535) {
    throw invalidArgument(`${what} "${text}" is not host:port; write it like 127.0.0.1:4700`);
  }
  if (!/^[A-Za-z0-9.-]+$/.test(host) && tryParseIPv4(host) === undefined) {
    throw invalidArgument(`${what} "${text}" has an invalid host "${host}"`);
  }
  return { host, port };
}

export function formatHostPort(hp: HostPort): string {
  return `${hp.host}:${hp.port}`;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "30s", "500ms", "2m", "1h"; a bare number means seconds. Returns milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw invalidArgument(`${what} "${text}" is not a duration; write it like 30s, 500ms or 2m`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 's']!);
}

export function parsePort(text: string, what: string): number {
  const port = Number(text);
  if (!/^[0-9]+$/.test(text.trim()) || port < 1 || port > 65535) {
    throw invalidArgument(`${what} "${text}" is not a port; use a number from 1 to 65535`);
  }
  return port;
}

function parseCount(text: string, what: string, min: number): number {
  const n = Number(text.trim());
  if (!/^[0-9]+$/.test(text.trim()) || n < min) throw invalidArgument(`${what} "${text}" is not a whole number of at least ${min}`);
  return n;
}

export interface ManagerConfig {
  readonly listen: HostPort;
  readonly http: HostPort;
  readonly etcdEndpoints: readonly string[]; // empty: start the embedded etcd
  /** For https:// endpoints: PEM files of the CA to trust and, for client-certificate authentication, our certificate and key. */
  readonly etcdTls?: { readonly caFile: string; readonly certFile?: string; readonly keyFile?: string };
  readonly dataDir: string;
  readonly defaultAddrPools: readonly Cidr[];
  readonly defaultAddrPoolSize: number;
  /** The default "bridge" network's pool (Docker's docker0 has 172.17.0.0/16). */
  readonly defaultBridgePool: Cidr;
  readonly vxlanPort: number;
  readonly excludes: readonly Cidr[];
  readonly nodeGraceMs: number;
  /** A node down this long is forgotten: its record goes and its bridge subnets are freed. */
  readonly nodeRetentionMs: number;
  readonly nodeTtlSeconds: number;
  readonly embeddedEtcdPort: number; // client port; the peer port is the next one
  /** State events an agent stream may hold unsent before the agent is cut off (it resumes). */
  readonly streamBufferEvents: number;
  /** Lifetime of node certificates; agents renew theirs at half of it. */
  readonly nodeCertTtlMs: number;
}

export interface RawManagerConfig {
  listen?: string;
  http?: string;
  etcdEndpoints?: string;
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  dataDir?: string;
  defaultAddrPool?: readonly string[];
  defaultAddrPoolSize?: string;
  defaultBridgePool?: string;
  vxlanPort?: string;
  exclude?: readonly string[];
  nodeGrace?: string;
  nodeRetention?: string;
  nodeTtl?: string;
  embeddedEtcdPort?: string;
  streamBufferEvents?: string;
  nodeCertTtl?: string;
}

export function parseManagerConfig(raw: RawManagerConfig): ManagerConfig {
  const pools = (raw.defaultAddrPool?.length ? raw.defaultAddrPool : ['10.0.0.0/8']).map((p) =>
    parseCidr(p, '--default-addr-pool'),
  );
  const poolSize = Number(raw.defaultAddrPoolSize ?? '24');
  if (!Number.isInteger(poolSize) || poolSize < 8 || poolSize > 30) {
    throw invalidArgument(`--default-addr-pool-size "${raw.defaultAddrPoolSize}" must be a prefix length from 8 to 30`);
  }
  for (const pool of pools) {
    if (pool.prefix > poolSize) {
      throw invalidArgument(`--default-addr-pool /${pool.prefix} is smaller than --default-addr-pool-size /${poolSize}`);
    }
  }
  const endpoints = (raw.etcdEndpoints ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')
    .map((e) => (/^https?:\/\//.test(e) ? e : `http://${e}`));
  const etcdTls = parseEtcdTls(endpoints, raw);
  const nodeTtlMs = parseDuration(raw.nodeTtl ?? '10s', '--node-ttl');
  if (nodeTtlMs < 2000) throw invalidArgument('--node-ttl must be at least 2s (etcd leases have whole seconds)');
  const nodeCertTtlMs = parseDuration(raw.nodeCertTtl ?? '24h', '--node-cert-ttl');
  if (nodeCertTtlMs < 4000 || nodeCertTtlMs > 365 * 86_400_000) {
    throw invalidArgument(`--node-cert-ttl "${raw.nodeCertTtl}" must be from 4s to 365 days (agents renew at half of it; e.g. 24h)`);
  }
  return Object.freeze({
    listen: parseHostPort(raw.listen ?? '0.0.0.0:4700', '--listen'),
    http: parseHostPort(raw.http ?? '127.0.0.1:4701', '--http'),
    etcdEndpoints: Object.freeze(endpoints),
    ...(etcdTls && { etcdTls: Object.freeze(etcdTls) }),
    dataDir: raw.dataDir?.trim() || '/var/lib/ctnet',
    defaultAddrPools: Object.freeze(pools),
    defaultAddrPoolSize: poolSize,
    defaultBridgePool: parseCidr(raw.defaultBridgePool?.trim() || '172.17.0.0/16', '--default-bridge-pool'),
    vxlanPort: parsePort(raw.vxlanPort ?? '4789', '--vxlan-port'),
    excludes: Object.freeze((raw.exclude ?? []).map((e) => parseCidr(e, '--exclude', false))),
    nodeGraceMs: parseDuration(raw.nodeGrace ?? '30s', '--node-grace'),
    nodeRetentionMs: parseDuration(raw.nodeRetention ?? '24h', '--node-retention'),
    nodeTtlSeconds: Math.ceil(nodeTtlMs / 1000),
    embeddedEtcdPort: parsePort(raw.embeddedEtcdPort ?? '23790', '--embedded-etcd-port'),
    streamBufferEvents: parseCount(raw.streamBufferEvents ?? '250000', '--stream-buffer-events', 100),
    nodeCertTtlMs,
  });
}

/**
 * https:// endpoints need the CA to trust (--etcd-cacert) and, as etcd's security guide
 * recommends, a client certificate (--etcd-cert with --etcd-key); plain and TLS endpoints are
 * not mixed. File contents are read when the manager starts.
 */
function parseEtcdTls(endpoints: readonly string[], raw: RawManagerConfig): ManagerConfig['etcdTls'] {
  const ca = raw.etcdCacert?.trim();
  const cert = raw.etcdCert?.trim();
  const key = raw.etcdKey?.trim();
  const https = endpoints.filter((e) => e.startsWith('https://'));
  if (https.length > 0 && https.length < endpoints.length) {
    throw invalidArgument(`--etcd-endpoints mixes http:// and https:// (${endpoints.join(',')}); use https:// for every member`);
  }
  if (https.length === 0) {
    if (ca || cert || key) throw invalidArgument('--etcd-cacert/--etcd-cert/--etcd-key need https:// --etcd-endpoints (e.g. https://10.0.0.5:2379)');
    return undefined;
  }
  if (!ca) throw invalidArgument('https:// --etcd-endpoints need --etcd-cacert FILE (the CA that signed etcd\'s certificate)');
  if (Boolean(cert) !== Boolean(key)) throw invalidArgument('--etcd-cert and --etcd-key go together (the client certificate and its key)');
  return { caFile: ca, ...(cert && key && { certFile: cert, keyFile: key }) };
}

export interface AgentConfig {
  readonly managers: readonly HostPort[];
  readonly advertiseAddr: string;
  readonly nodeName: string;
  readonly dataDir: string;
  readonly http: HostPort;
  readonly resyncIntervalMs: number;
  readonly netnsPrefix: string;
  readonly labels: Readonly<Record<string, string>>;
  /** TTL of the embedded resolver's answers: short, so a cached answer is never stale for long. */
  readonly dnsTtlSeconds: number;
  /** The CNI plugin's unix socket (root only); '' when turned off (--cni-socket none). */
  readonly cniSocket: string;
  /** Where dockerd looks for plugins: the agent serves ctnet.sock there; '' when turned off (--docker-plugin-dir none). */
  readonly dockerPluginDir: string;
  /** How the agent reaches this host's dockerd (DOCKER_HOST): a unix socket path or host:port. */
  readonly dockerHost: { readonly socketPath: string } | { readonly host: string; readonly port: number };
  /**
   * The address every Docker container's resolver forwards to (daemon.json "dns"): the agent
   * puts it on this host's lo and answers cluster names there, from the asking container's view.
   */
  readonly dockerDns: string;
}

export interface RawAgentConfig {
  manager?: string;
  advertiseAddr?: string;
  nodeName?: string;
  dataDir?: string;
  http?: string;
  resyncInterval?: string;
  netnsPrefix?: string;
  labels?: Readonly<Record<string, string>>;
  dnsTtl?: string;
  cniSocket?: string;
  dockerPluginDir?: string;
  dockerHost?: string;
  dockerDns?: string;
  defaultNodeName: string;
}

export function parseAgentConfig(raw: RawAgentConfig): AgentConfig {
  const managers = (raw.manager ?? '')
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean)
    .map((m) => parseHostPort(m.includes(':') ? m : `${m}:4700`, '--manager'));
  if (managers.length === 0) throw invalidArgument('no manager given; pass --manager HOST:PORT[,HOST:PORT...] (or CTNET_MANAGER)');
  if (!raw.advertiseAddr) throw invalidArgument('no advertise address given; pass --advertise-addr IP (this host\'s underlay address)');
  const advertiseAddr = raw.advertiseAddr.trim();
  if (tryParseIPv4(advertiseAddr) === undefined) throw invalidArgument(`--advertise-addr "${advertiseAddr}" is not an IPv4 address`);
  const resync = parseDuration(raw.resyncInterval ?? '10s', '--resync-interval');
  if (resync < 100) throw invalidArgument('--resync-interval must be at least 100ms');
  const prefix = raw.netnsPrefix?.trim() || 'ctns-';
  if (!/^[A-Za-z0-9_.-]{1,20}$/.test(prefix)) throw invalidArgument(`namespace prefix "${prefix}" must be 1-20 letters, digits, '.', '_' or '-'`);
  const ttlText = (raw.dnsTtl ?? '5').trim();
  const dnsTtlSeconds = Number(ttlText.replace(/s$/, ''));
  if (!/^\d+s?$/.test(ttlText) || dnsTtlSeconds > 86_400) {
    throw invalidArgument(`--dns-ttl "${raw.dnsTtl}" must be whole seconds from 0 to 86400 (e.g. 5 or 5s)`);
  }
  const cni = (raw.cniSocket ?? '').trim() || '/run/ctnet/cni.sock';
  if (cni !== 'none' && (!cni.startsWith('/') || cni.length > 100 || /[^\x21-\x7e]/.test(cni))) {
    throw invalidArgument(`--cni-socket "${cni}" must be an absolute path of at most 100 printable ASCII characters, no spaces (a unix socket), or none`);
  }
  const pluginDir = (raw.dockerPluginDir ?? '').trim() || '/run/docker/plugins';
  if (pluginDir !== 'none' && (!pluginDir.startsWith('/') || pluginDir.length > 90 || /[^\x21-\x7e]/.test(pluginDir))) {
    throw invalidArgument(`--docker-plugin-dir "${pluginDir}" must be an absolute path of at most 90 printable ASCII characters, no spaces, or none`);
  }
  const dockerDns = (raw.dockerDns ?? '').trim() || '169.254.53.53';
  parseIPv4(dockerDns, '--docker-dns');
  return Object.freeze({
    dnsTtlSeconds,
    cniSocket: cni === 'none' ? '' : cni,
    dockerPluginDir: pluginDir === 'none' ? '' : pluginDir,
    dockerHost: parseDockerHost(raw.dockerHost),
    dockerDns,
    managers: Object.freeze(managers),
    advertiseAddr,
    nodeName: (raw.nodeName?.trim() || raw.defaultNodeName).toLowerCase(),
    dataDir: raw.dataDir?.trim() || '/var/lib/ctnet/agent',
    http: parseHostPort(raw.http ?? '127.0.0.1:4702', '--http'),
    resyncIntervalMs: resync,
    netnsPrefix: prefix,
    labels: Object.freeze({ ...(raw.labels ?? {}) }),
  });
}

/** DOCKER_HOST as the docker CLI reads it: unix:///path (the default /var/run/docker.sock) or tcp://host:port. */
export function parseDockerHost(text: string | undefined): AgentConfig['dockerHost'] {
  const t = (text ?? '').trim() || 'unix:///var/run/docker.sock';
  if (t.startsWith('unix://')) {
    const socketPath = t.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw invalidArgument(`DOCKER_HOST "${t}" must name an absolute socket path, e.g. unix:///var/run/docker.sock`);
    return { socketPath };
  }
  if (t.startsWith('tcp://')) {
    const hp = parseHostPort(t.slice('tcp://'.length).replace(/\/$/, ''), 'DOCKER_HOST');
    return { host: hp.host, port: hp.port };
  }
  throw invalidArgument(`DOCKER_HOST "${t}" must be unix:///PATH or tcp://HOST:PORT (TLS to dockerd is not supported: use its unix socket)`);
}
