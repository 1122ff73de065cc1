import type {
  Container as DomainContainer,
  Endpoint as DomainEndpoint,
  Network as DomainNetwork,
  Node as DomainNode,
  Service as DomainService,
  TaskInfo,
  TaskStatus as DomainTaskStatus,
  TaskState,
  Driver,
  ExposedPort,
  Link,
  PortMapping,
  Protocol,
  PublishSpec,
} from '@ctnet/core';
import { DRIVERS, ENDPOINT_MODES, PROTOCOLS, TASK_STATES, invalidArgument, parseCidr, parseIPv4, parseMac } from '@ctnet/core';
import type { Container, Endpoint, Network, Node, Publish, Service, Task, TaskStatus } from '../gen/ctnet/v1/model.js';

/**
 * Wire <-> domain. Outbound is a plain copy; inbound (what an agent or a peer sends) is
 * validated, so code behind the boundary only ever sees domain values it can trust.
 */
export function networkToWire(n: DomainNetwork): Network {
  return {
    id: n.id,
    name: n.name,
    driver: n.driver,
    vni: n.vni,
    subnet: n.subnet,
    gateway: n.gateway,
    ipRange: n.ipRange,
    auxAddresses: { ...n.auxAddresses },
    attachable: n.attachable,
    internal: n.internal,
    mtu: n.mtu,
    parent: n.parent,
    options: { ...n.options },
    labels: { ...n.labels },
    createdAt: n.createdAt,
    node: n.node ?? '',
    hostSubnets: { ...(n.hostSubnets ?? {}) },
  };
}

export function networkFromWire(w: Network): DomainNetwork {
  if (!(DRIVERS as readonly string[]).includes(w.driver)) throw invalidArgument(`network ${w.name}: unknown driver "${w.driver}"`);
  parseCidr(w.subnet, `network ${w.name} subnet`);
  parseCidr(w.ipRange, `network ${w.name} ip-range`);
  // A pooled bridge network has no gateway of its own: each host's is the first address of its subnet.
  if (w.gateway !== '' || w.driver !== 'bridge' || w.node) parseIPv4(w.gateway, `network ${w.name} gateway`);
  const hostSubnets: Record<string, string> = {};
  for (const [node, cidr] of Object.entries(w.hostSubnets ?? {})) {
    parseCidr(cidr, `network ${w.name} subnet of node ${node}`);
    hostSubnets[node] = cidr;
  }
  const { node, hostSubnets: _, ...rest } = w;
  return {
    ...rest,
    driver: w.driver as Driver,
    auxAddresses: { ...w.auxAddresses },
    options: { ...w.options },
    labels: { ...w.labels },
    ...(w.driver === 'bridge' && { node: node ?? '', hostSubnets }),
  };
}

export function endpointToWire(e: DomainEndpoint): Endpoint {
  return { ...e, origin: e.origin ?? '', aliases: [...e.aliases], ports: (e.ports ?? []).map((p) => ({ ...p })) };
}

export function endpointFromWire(w: Endpoint): DomainEndpoint {
  parseIPv4(w.ip, `endpoint ${w.name} address`);
  const { origin, ports, ...rest } = w;
  return {
    ...rest,
    mac: parseMac(w.mac),
    aliases: [...w.aliases],
    ...(origin === 'docker' && { origin }),
    ...(ports.length > 0 && { ports: ports.map((p) => portMappingFromWire(p, `endpoint ${w.name}`)) }),
  };
}

export function nodeToWire(n: DomainNode): Node {
  return { ...n, labels: { ...n.labels }, routes: [...n.routes], problems: { ...(n.problems ?? {}) }, dockerNetworks: { ...(n.dockerNetworks ?? {}) } };
}

export function nodeFromWire(w: Node): DomainNode {
  parseIPv4(w.addr, `node ${w.name} address`);
  const { problems, dockerNetworks, ...rest } = w;
  return {
    ...rest,
    labels: { ...w.labels },
    routes: [...w.routes],
    ...(problems && Object.keys(problems).length > 0 && { problems: { ...problems } }),
    ...(dockerNetworks && Object.keys(dockerNetworks).length > 0 && { dockerNetworks: { ...dockerNetworks } }),
  };
}

export function containerToWire(c: DomainContainer): Container {
  const { task, status, ports, expose, links, attachNetns, cni, ...rest } = c;
  return {
    ...rest,
    attachNetns: attachNetns ?? '',
    cni: cni && { ...cni },
    cmd: [...c.cmd],
    env: { ...c.env },
    dns: [...c.dns],
    dnsSearch: [...c.dnsSearch],
    task: task && { ...task, publish: (task.publish ?? []).map((p) => ({ ...p })) },
    status: status && taskStatusToWire(status),
    ports: (ports ?? []).map((p) => ({ ...p })),
    expose: (expose ?? []).map((p) => ({ ...p })),
    links: (links ?? []).map((l) => ({ ...l })),
  };
}

const port = (n: number, what: string): number => {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw invalidArgument(`${what} ${n} is not a port (1-65535)`);
  return n;
};
const protocol = (p: string, what: string): Protocol => {
  if (!(PROTOCOLS as readonly string[]).includes(p)) throw invalidArgument(`${what}: unknown protocol "${p}"`);
  return p as Protocol;
};

export function publishFromWire(p: Publish, name: string): PublishSpec {
  if (p.mode !== 'ingress' && p.mode !== 'host') throw invalidArgument(`${name}: unknown publish mode "${p.mode}"`);
  return { protocol: protocol(p.protocol, name), published: port(p.published, `${name} published port`), target: port(p.target, `${name} target port`), mode: p.mode };
}

export function portMappingFromWire(p: Container['ports'][number], name: string): PortMapping {
  const who = name.includes(' ') ? name : `container ${name}`;
  if (p.hostIp) parseIPv4(p.hostIp, `${who} host IP`);
  return { protocol: protocol(p.protocol, who), hostIp: p.hostIp, hostPort: port(p.hostPort, `${who} host port`), containerPort: port(p.containerPort, `${who} port`) };
}

function portsFromWire(w: Container): Pick<DomainContainer, 'ports' | 'expose' | 'links'> {
  const out: { ports?: PortMapping[]; expose?: ExposedPort[]; links?: Link[] } = {};
  if (w.ports?.length) {
    out.ports = w.ports.map((p) => portMappingFromWire(p, w.name));
  }
  if (w.expose?.length) out.expose = w.expose.map((e) => ({ port: port(e.port, `container ${w.name} exposed port`), protocol: protocol(e.protocol, `container ${w.name}`) }));
  if (w.links?.length) out.links = w.links.map((l) => (parseIPv4(l.ip, `container ${w.name} link ${l.alias}`), { ...l }));
  return out;
}

const MODES = ['network', 'none', 'host', 'container'];

export function containerFromWire(w: Container): DomainContainer {
  if (w.cmd.length === 0) throw invalidArgument(`container ${w.name} has no command`);
  const mode = (w.mode || 'network') as DomainContainer['mode'];
  if (!MODES.includes(mode)) throw invalidArgument(`container ${w.name}: unknown network mode "${w.mode}"`);
  const { task, status, ports: _p, expose: _e, links: _l, attachNetns, cni, ...rest } = w;
  return {
    ...rest,
    ...(attachNetns && { attachNetns }),
    ...(cni && { cni: { containerId: cni.containerId, ifname: cni.ifname } }),
    ...portsFromWire(w),
    mode,
    cmd: [...w.cmd],
    env: { ...w.env },
    dns: [...w.dns],
    dnsSearch: [...w.dnsSearch],
    ...(task && { task: taskFromWire(task, w.name) }),
    ...(status && { status: taskStatusFromWire(status, w.name) }),
  };
}

function taskFromWire(t: Task, name: string): TaskInfo {
  if (!(ENDPOINT_MODES as readonly string[]).includes(t.endpointMode)) throw invalidArgument(`task ${name}: unknown endpoint mode "${t.endpointMode}"`);
  if (t.desired !== 'running' && t.desired !== 'shutdown') throw invalidArgument(`task ${name}: unknown desired state "${t.desired}"`);
  const { publish, ...rest } = t;
  return {
    ...rest,
    endpointMode: t.endpointMode as TaskInfo['endpointMode'],
    desired: t.desired,
    ...(publish?.length && { publish: publish.map((p) => publishFromWire(p, `task ${name}`)) }),
  };
}

export function taskStatusToWire(s: DomainTaskStatus): TaskStatus {
  return { ...s };
}

export function taskStatusFromWire(s: TaskStatus, name: string): DomainTaskStatus {
  if (!(TASK_STATES as readonly string[]).includes(s.state)) throw invalidArgument(`container ${name}: unknown task state "${s.state}"`);
  return { ...s, state: s.state as TaskState };
}

export function serviceToWire(s: DomainService): Service {
  return { ...s, networks: [...s.networks], constraints: [...s.constraints], cmd: [...s.cmd], env: { ...s.env }, publish: (s.publish ?? []).map((p) => ({ ...p })) };
}
