import { invalidArgument } from '../errors.js';
import { parseIPv4 } from '../net/ipv4.js';
import { parseName } from './names.js';
import type { TaskInfo, TaskStatus } from './service.js';

/** A container: a command in its own network namespace on one node (the seeds' "sandbox"). */
export interface Container {
  readonly id: string;
  readonly name: string;
  readonly node: string;
  readonly cmd: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly hostname: string;
  readonly dns: readonly string[];
  readonly dnsSearch: readonly string[];
  readonly createdAt: string;
  /** network: its own sandbox on its endpoints' networks; none: a sandbox with only lo; host: the host's namespace; container: another container's sandbox. */
  readonly mode: ContainerMode;
  readonly sharedWith: string; // mode container: the id of the container whose sandbox it joins
  readonly attachPid: number; // > 0: an existing process plugged in by `ctagent attach`
  /** Set for a service's task: the manager created it and restarts, replaces and removes it. */
  readonly task?: TaskInfo;
  /** What the node's agent last reported; absent until it has. */
  readonly status?: TaskStatus;
}

export type ContainerMode = 'network' | 'none' | 'host' | 'container';

/** Docker's --network forms: a network name, none, host, or container:NAME. */
export function parseNetworkMode(text: string): { mode: ContainerMode; network?: string; container?: string } {
  const t = text.trim();
  if (t === 'none' || t === 'host') return { mode: t };
  if (t.startsWith('container:')) {
    const name = t.slice('container:'.length);
    if (!name) throw invalidArgument('--network container: needs a container name, e.g. --network container:web');
    return { mode: 'container', container: parseName(name, 'container') };
  }
  if (t === '') throw invalidArgument('no --network given; name a network, or use none, host or container:NAME');
  return { mode: 'network', network: t };
}

export interface ContainerRequest {
  name: string;
  node?: string;
  cmd?: readonly string[];
  env?: Record<string, string>;
  hostname?: string;
  dns?: readonly string[];
  dnsSearch?: readonly string[];
}

export interface ContainerSpec {
  readonly name: string;
  readonly node?: string;
  readonly cmd: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly hostname: string;
  readonly dns: readonly string[];
  readonly dnsSearch: readonly string[];
}

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseContainerRequest(req: ContainerRequest): ContainerSpec {
  const name = parseName(req.name, 'container');
  const node = req.node?.trim() ? parseName(req.node, 'node') : undefined;
  const cmd = [...(req.cmd ?? [])];
  if (cmd.length === 0 || cmd[0]!.trim() === '') {
    throw invalidArgument('no command given; put it after "--", e.g. ctmgr run -d --name web --network app -- sleep infinity');
  }
  for (const key of Object.keys(req.env ?? {})) {
    if (!ENV_KEY.test(key)) throw invalidArgument(`environment variable name "${key}" is invalid; use letters, digits and _`);
  }
  const hostname = req.hostname?.trim() ? parseName(req.hostname, 'hostname') : name;
  const dns = (req.dns ?? []).map((d) => {
    parseIPv4(d, '--dns');
    return d.trim();
  });
  const dnsSearch = (req.dnsSearch ?? []).map((d) => {
    if (!/^[A-Za-z0-9.-]{1,253}$/.test(d)) throw invalidArgument(`--dns-search "${d}" is not a domain name`);
    return d;
  });
  return { name, ...(node && { node }), cmd, env: { ...(req.env ?? {}) }, hostname, dns, dnsSearch };
}
