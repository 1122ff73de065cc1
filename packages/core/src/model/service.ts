import { invalidArgument } from '../errors.js';
import { nameKey, parseName } from './names.js';
import type { Node } from './node.js';
import { parsePublish, type PublishSpec } from './ports.js';
import { checkCmdSize, checkEnvSize, checkListSize } from './limits.js';

/**
 * A service: N replicas of one command, each a task (a container the manager places), found
 * by name on each of its networks. In `vip` mode the name resolves to one virtual address per
 * network (a bare endpoint named after the service); in `dnsrr` mode to every running task.
 */
export type EndpointMode = 'vip' | 'dnsrr';
export const ENDPOINT_MODES: readonly EndpointMode[] = ['vip', 'dnsrr'];

export interface Service {
  readonly id: string;
  readonly name: string;
  readonly networks: readonly string[]; // network ids, in the order given (eth0 first)
  readonly replicas: number;
  readonly endpointMode: EndpointMode;
  readonly constraints: readonly string[]; // as written; parsed with parseConstraint
  readonly cmd: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly createdAt: string;
  readonly updatedAt: string;
  /** `--publish`, published ports chosen. Absent: none. */
  readonly publish?: readonly PublishSpec[];
}

/** A task is a container with this attached: which service and slot it fills, and what the manager wants of it. */
export interface TaskInfo {
  readonly serviceId: string;
  readonly service: string; // the service's name (DNS: the name and tasks.<name>)
  readonly slot: number;
  readonly endpointMode: EndpointMode;
  /** shutdown: leaving; its DNS records are withdrawn everywhere before its sandbox goes. */
  readonly desired: 'running' | 'shutdown';
  /** The service's ingress-mode ports: every node forwards them to the running tasks (the routing mesh). */
  readonly publish?: readonly PublishSpec[];
}

/** What the node's agent last reported of a container's process. */
export type TaskState = 'pending' | 'starting' | 'running' | 'failed' | 'exited' | 'unknown';
export const TASK_STATES: readonly TaskState[] = ['pending', 'starting', 'running', 'failed', 'exited', 'unknown'];

export interface TaskStatus {
  readonly state: TaskState;
  readonly message: string;
  readonly exitCode: number;
  readonly restarts: number;
  readonly since: string; // RFC 3339
}

export interface Constraint {
  readonly text: string;
  readonly field: 'name' | 'label';
  readonly label?: string;
  readonly op: '==' | '!=';
  readonly value: string;
}

const CONSTRAINT = /^\s*node\.(name|labels\.([A-Za-z0-9_.\-/]+))\s*(==|!=)\s*(\S+)\s*$/;

/** Swarm's placement constraints: node.name==X, node.labels.K==V (and != for both). */
export function parseConstraint(text: string): Constraint {
  const m = CONSTRAINT.exec(text);
  if (!m) {
    throw invalidArgument(`constraint "${text}" is not understood; write node.name==NAME or node.labels.KEY==VALUE (or != instead of ==)`);
  }
  const op = m[3] as '==' | '!=';
  return m[2] !== undefined
    ? { text: text.trim(), field: 'label', label: m[2], op, value: m[4]! }
    : { text: text.trim(), field: 'name', op, value: m[4]! };
}

export function satisfies(node: Node, constraints: readonly Constraint[]): boolean {
  return constraints.every((c) => {
    const actual = c.field === 'name' ? nameKey(node.name) : node.labels[c.label!];
    const wanted = c.field === 'name' ? nameKey(c.value) : c.value;
    return c.op === '==' ? actual === wanted : actual !== wanted;
  });
}

export interface ServiceRequest {
  name: string;
  networks: readonly string[];
  replicas: number;
  endpointMode?: string;
  constraints?: readonly string[];
  cmd?: readonly string[];
  env?: Record<string, string>;
  publish?: readonly string[];
}

export interface ServiceSpec {
  readonly name: string;
  readonly networks: readonly string[]; // names or ids, still to be resolved
  readonly replicas: number;
  readonly endpointMode: EndpointMode;
  readonly constraints: readonly Constraint[];
  readonly cmd: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly publish: readonly PublishSpec[];
}

export const MAX_REPLICAS = 10_000;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function parseReplicas(value: number | string): number {
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isInteger(n) || String(value).trim() === '') throw invalidArgument(`replicas "${value}" is not a whole number; give e.g. --replicas 3`);
  if (n < 0) throw invalidArgument(`replicas cannot be negative (got ${n}); use 0 to stop every task`);
  if (n > MAX_REPLICAS) throw invalidArgument(`replicas ${n} is more than ${MAX_REPLICAS}; split the work over several services`);
  return n;
}

export function parseServiceRequest(req: ServiceRequest): ServiceSpec {
  const name = parseName(req.name, 'service');
  // "tasks" would shadow every tasks.<service> name.
  if (nameKey(name) === 'tasks') throw invalidArgument('service name "tasks" is reserved (tasks.<service> lists a service\'s tasks); choose another name');
  const networks = req.networks.map((n) => n.trim()).filter((n) => n !== '');
  if (networks.length === 0) throw invalidArgument('no --network given; a service needs at least one network, e.g. --network app');
  if (new Set(networks.map(nameKey)).size !== networks.length) throw invalidArgument('the same --network is given twice');
  const mode = (req.endpointMode?.trim() || 'vip') as EndpointMode;
  if (!ENDPOINT_MODES.includes(mode)) throw invalidArgument(`--endpoint-mode "${req.endpointMode}" is unknown; use vip or dnsrr`);
  const cmd = [...(req.cmd ?? [])];
  if (cmd.length === 0 || cmd[0]!.trim() === '') {
    throw invalidArgument('no command given; put it after "--", e.g. ctmgr service create --name web --network app -- sleep infinity');
  }
  checkCmdSize(cmd);
  checkEnvSize(req.env);
  checkListSize(req.networks, '--network options');
  checkListSize(req.constraints, '--constraint options');
  checkListSize(req.publish, '--publish options');
  for (const key of Object.keys(req.env ?? {})) {
    if (!ENV_KEY.test(key)) throw invalidArgument(`environment variable name "${key}" is invalid; use letters, digits and _`);
  }
  return {
    name,
    networks,
    replicas: parseReplicas(req.replicas),
    endpointMode: mode,
    constraints: (req.constraints ?? []).map(parseConstraint),
    cmd,
    env: { ...(req.env ?? {}) },
    publish: parsePublishes(req.publish ?? []),
  };
}

/** Each --publish, and no two claiming the same published port and protocol. */
function parsePublishes(texts: readonly string[]): PublishSpec[] {
  const out = texts.map(parsePublish);
  for (const [i, p] of out.entries()) {
    const twin = out.findIndex((q, j) => j < i && q.published !== 0 && q.published === p.published && q.protocol === p.protocol);
    if (twin >= 0) throw invalidArgument(`port ${p.published}/${p.protocol} is published twice (--publish "${texts[twin]}" and "${texts[i]}")`);
  }
  return out;
}

/** `<service>.<slot>.<task-id>`, as Swarm names task containers. */
export const taskName = (service: string, slot: number, containerId: string): string => `${service}.${slot}.${containerId.slice(0, 12)}`;

/** A task's DNS records exist only while its process runs and the manager still wants it. */
export function isServing(c: { task?: TaskInfo; status?: TaskStatus }): boolean {
  if (!c.task) return true;
  return c.task.desired === 'running' && c.status?.state === 'running';
}
