import { CtnetError, ErrorCode, hostBinding, hostSubnetsOf } from '@ctnet/core';
import { networkFromWire } from '@ctnet/proto';
import type { Container, ContainerDetail, Endpoint, Network, NetworkDetail, NodeDetail, NodeStatus } from '@ctnet/proto';

/**
 * Everything the CLI prints on stdout is shaped here: aligned tables for people, JSON for
 * scripts. JSON views list their fields explicitly, so the output is a stable contract
 * rather than whatever the wire type happens to carry; map keys are sorted.
 */

const GAP = '   ';

/** Columns padded to their widest cell, three spaces apart, no trailing spaces. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    widths
      .map((w, i) => (cells[i] ?? '').padEnd(w))
      .join(GAP)
      .trimEnd();
  return [headers, ...rows].map(line).join('\n') + '\n';
}

export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

/** Label/value lines, the values aligned: the human form of `inspect`. */
export function formatFields(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(...fields.map(([k]) => k.length)) + 1;
  return fields.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${v}`.trimEnd()).join('\n') + '\n';
}

export const shortId = (id: string): string => id.slice(0, 12);

const dash = (text: string): string => (text === '' ? '-' : text);

function sortedMap(map: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(map).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** "k1=v1, k2=v2" in key order, or "-" when empty. */
export function formatPairs(map: Readonly<Record<string, string>>): string {
  return dash(
    Object.entries(sortedMap(map))
      .map(([k, v]) => `${k}=${v}`)
      .join(', '),
  );
}

// ---- JSON views --------------------------------------------------------------------

export function networkView(n: Network) {
  return {
    id: n.id,
    name: n.name,
    driver: n.driver,
    vni: n.vni,
    subnet: n.subnet,
    gateway: n.gateway,
    ipRange: n.ipRange,
    mtu: n.mtu,
    parent: n.parent,
    scope: n.driver === 'bridge' ? 'local' : 'swarm',
    ...(n.driver === 'bridge' && { node: n.node, hostSubnets: hostSubnetsOf(networkFromWire(n)) }),
    internal: n.internal,
    attachable: n.attachable,
    auxAddresses: sortedMap(n.auxAddresses),
    options: sortedMap(n.options),
    labels: sortedMap(n.labels),
    createdAt: n.createdAt,
  };
}

export function endpointView(e: Endpoint) {
  return {
    id: e.id,
    name: e.name,
    networkId: e.networkId,
    node: e.node,
    ip: e.ip,
    mac: e.mac,
    aliases: [...e.aliases],
    createdAt: e.createdAt,
    // Who made it: "docker" for a Docker container's endpoint (its names are the aliases).
    ...(e.origin && { origin: e.origin }),
    ...((e.ports ?? []).length > 0 && { ports: e.ports.map((p) => ({ protocol: p.protocol, hostIp: p.hostIp, hostPort: p.hostPort, containerPort: p.containerPort })) }),
  };
}

export function nodeView(s: NodeStatus) {
  const n = s.node;
  return {
    name: n?.name ?? '',
    addr: n?.addr ?? '',
    hostname: n?.hostname ?? '',
    status: s.status,
    endpointCount: s.endpoints,
    ackedRevision: s.ackedRevision,
    lag: s.lag,
    lastAckAt: s.lastAckAt,
    labels: sortedMap(n?.labels ?? {}),
    routes: [...(n?.routes ?? [])],
    registeredAt: n?.registeredAt ?? '',
    problems: sortedMap(n?.problems ?? {}),
    // Its Docker's networks of other drivers: names a ctnet network cannot take (shown when there are any).
    ...(Object.keys(n?.dockerNetworks ?? {}).length > 0 && { dockerNetworks: sortedMap(n!.dockerNetworks) }),
  };
}

export function networkDetailView(d: NetworkDetail) {
  const usage = d.usage ?? { total: 0, allocated: 0, free: 0 };
  return {
    ...networkView(requireNetwork(d.network)),
    ipamUsage: { total: usage.total, allocated: usage.allocated, free: usage.free },
    problems: sortedMap(d.problems ?? {}),
    endpoints: d.endpoints.map(endpointView),
  };
}

export function nodeDetailView(d: NodeDetail) {
  const { endpointCount: _count, ...node } = nodeView(requireStatus(d.status));
  return { ...node, endpoints: d.endpoints.map(endpointView) };
}

/**
 * `networkName` turns an endpoint's network id into a name. Endpoints are listed by network
 * name, as in Docker's NetworkSettings; the endpoint's own name is the container's.
 */
export function containerView(d: ContainerDetail, networkName: (id: string) => string) {
  const c = requireContainer(d.container);
  return {
    id: c.id,
    name: c.name,
    node: c.node,
    cmd: [...c.cmd],
    env: sortedMap(c.env),
    hostname: c.hostname,
    dns: [...c.dns],
    dnsSearch: [...c.dnsSearch],
    createdAt: c.createdAt,
    mode: c.mode,
    ...(c.status && { status: { state: c.status.state, exitCode: c.status.exitCode, restarts: c.status.restarts, message: c.status.message, since: c.status.since } }),
    ports: c.ports.map((p) => ({ containerPort: p.containerPort, protocol: p.protocol, hostIp: p.hostIp || '0.0.0.0', hostPort: p.hostPort })),
    expose: c.expose.map((e) => `${e.port}/${e.protocol}`),
    links: c.links.map((l) => ({ name: l.name, alias: l.alias, ip: l.ip })),
    endpoints: d.endpoints.map((e) => ({
      network: networkName(e.networkId),
      ip: e.ip,
      mac: e.mac,
      aliases: [...e.aliases],
      id: e.id,
    })),
  };
}

// ---- tables ------------------------------------------------------------------------

export function networkTable(rows: readonly { network: Network; endpoints: number }[]): string {
  return formatTable(
    ['NETWORK ID', 'NAME', 'DRIVER', 'SUBNET', 'VNI', 'ENDPOINTS'],
    rows.map(({ network: n, endpoints }) => [
      shortId(n.id),
      n.name,
      n.driver,
      n.subnet,
      n.vni === 0 ? '-' : String(n.vni),
      String(endpoints),
    ]),
  );
}

export function nodeTable(nodes: readonly NodeStatus[]): string {
  return formatTable(
    ['NAME', 'ADDRESS', 'STATUS', 'ENDPOINTS', 'LAG'],
    nodes.map((s) => [s.node?.name ?? '', s.node?.addr ?? '', s.status, String(s.endpoints), String(s.lag)]),
  );
}

/** `networkName` turns an endpoint's network id into what the NETWORK column shows. */
export function endpointTable(endpoints: readonly Endpoint[], networkName: (id: string) => string): string {
  return formatTable(
    ['ENDPOINT ID', 'NAME', 'NETWORK', 'NODE', 'IP', 'MAC', 'ALIASES'],
    endpoints.map((e) => [
      shortId(e.id),
      e.name,
      networkName(e.networkId),
      e.node,
      e.ip,
      e.mac,
      dash(e.aliases.join(',')),
    ]),
  );
}

const COMMAND_WIDTH = 30;

/** `docker`: the rows that are Docker's containers (ctnet knows no id or command for them). */
export function containerTable(details: readonly ContainerDetail[], networkName: (id: string) => string, docker: ReadonlySet<ContainerDetail> = new Set()): string {
  return formatTable(
    ['CONTAINER ID', 'NAME', 'NODE', 'NETWORKS', 'IP', 'PORTS', 'COMMAND', 'CREATED'],
    details.map((d) => {
      const c = requireContainer(d.container);
      const fromDocker = docker.has(d);
      return [
        fromDocker ? '(docker)' : shortId(c.id),
        c.name,
        c.node,
        dash(d.endpoints.map((e) => networkName(e.networkId)).join(',')),
        dash(d.endpoints.map((e) => e.ip).join(',')),
        // as docker ps: 0.0.0.0:8080->80/tcp
        dash(c.ports.map((p) => `${hostBinding(p)}->${p.containerPort}/${p.protocol}`).join(', ')),
        fromDocker ? '(see docker ps)' : truncate(commandLine(c.cmd), COMMAND_WIDTH),
        c.createdAt,
      ];
    }),
  );
}

/** The command as a shell would need it typed: `sh -c 'echo hi'`, so argument boundaries show. */
export function commandLine(cmd: readonly string[]): string {
  return cmd.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ');
}

const truncate = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

// ---- human inspect -----------------------------------------------------------------

export function networkSummary(d: NetworkDetail): string {
  const n = requireNetwork(d.network);
  const usage = d.usage ?? { total: 0, allocated: 0, free: 0 };
  const fields: [string, string][] = [
    ['Name', n.name],
    ['ID', n.id],
    ['Driver', n.driver],
    ['VNI', n.vni === 0 ? '-' : String(n.vni)],
    ['Scope', n.driver === 'bridge' ? (n.node ? `local (node ${n.node} only)` : 'local (every node, a subnet each)') : 'swarm'],
    [n.driver === 'bridge' && !n.node ? 'Pool' : 'Subnet', n.subnet],
    ['Gateway', dash(n.gateway)],
    ...(n.driver === 'bridge' && !n.node
      ? [['Host subnets', dash(hostSubnetsOf(networkFromWire(n)).map((h) => `${h.node} ${h.subnet} (gateway ${h.gateway})`).join(', '))] as [string, string]]
      : []),
    ['IP range', dash(n.ipRange)],
    ['MTU', n.mtu === 0 ? 'default' : String(n.mtu)],
    ...(n.parent === '' ? [] : [['Parent', n.parent] as [string, string]]),
    ['Internal', yesNo(n.internal)],
    ['Attachable', yesNo(n.attachable)],
    ['Aux addresses', formatPairs(n.auxAddresses)],
    ['Options', formatPairs(n.options)],
    ['Labels', formatPairs(n.labels)],
    ['Created', dash(n.createdAt)],
    ['IPAM', `${usage.allocated} allocated, ${usage.free} free of ${usage.total}`],
    ...Object.entries(sortedMap(d.problems ?? {})).map(([node, why]): [string, string] => [`Problem on ${node}`, why]),
    ['Endpoints', String(d.endpoints.length)],
  ];
  return formatFields(fields) + indentedEndpoints(d.endpoints, () => n.name);
}

export function nodeSummary(d: NodeDetail): string {
  const s = requireStatus(d.status);
  const n = s.node;
  const fields: [string, string][] = [
    ['Name', n?.name ?? ''],
    ['Address', n?.addr ?? ''],
    ['Hostname', dash(n?.hostname ?? '')],
    ['Status', s.status],
    ['Lag', `${s.lag} (acked revision ${s.ackedRevision}${s.lastAckAt ? ` at ${s.lastAckAt}` : ''})`],
    ['Labels', formatPairs(n?.labels ?? {})],
    ['Routes', dash((n?.routes ?? []).join(', '))],
    ['Registered', dash(n?.registeredAt ?? '')],
    ...Object.values(n?.problems ?? {}).sort().map((why): [string, string] => ['Problem', why]),
    ['Endpoints', String(d.endpoints.length)],
  ];
  return formatFields(fields) + indentedEndpoints(d.endpoints, shortId);
}

export function containerSummary(d: ContainerDetail, networkName: (id: string) => string): string {
  const c = requireContainer(d.container);
  const fields: [string, string][] = [
    ['Name', c.name],
    ['ID', c.id],
    ['Node', c.node],
    ['Command', commandLine(c.cmd)],
    ['Hostname', c.hostname],
    ['Env', formatPairs(c.env)],
    ['DNS', dash(c.dns.join(', '))],
    ['DNS search', dash(c.dnsSearch.join(', '))],
    ['Created', dash(c.createdAt)],
    ['Endpoints', String(d.endpoints.length)],
  ];
  return formatFields(fields) + indentedEndpoints(d.endpoints, networkName);
}

function indentedEndpoints(endpoints: readonly Endpoint[], networkName: (id: string) => string): string {
  if (endpoints.length === 0) return '';
  const table = endpointTable(endpoints, networkName);
  return table
    .split('\n')
    .map((l) => (l === '' ? l : `  ${l}`))
    .join('\n');
}

const yesNo = (b: boolean): string => (b ? 'yes' : 'no');

function requireNetwork(n: Network | undefined): Network {
  if (n === undefined) throw new CtnetError(ErrorCode.Internal, 'the manager answered without a network; is it the same ctnet version?');
  return n;
}

export function requireContainer(c: Container | undefined): Container {
  if (c === undefined) throw new CtnetError(ErrorCode.Internal, 'the manager answered without a container; is it the same ctnet version?');
  return c;
}

function requireStatus(s: NodeStatus | undefined): NodeStatus {
  if (s === undefined) throw new CtnetError(ErrorCode.Internal, 'the manager answered without a node status; is it the same ctnet version?');
  return s;
}
