import { isVirtualIp, nameKey, type Container, type Endpoint, type PortMapping, type PublishSpec, type Service } from '@ctnet/core';
import { CompareResult, CompareTarget, type ComparatorBuilder, type ICompare } from 'etcd3';
import { keys } from './keys.js';

/**
 * Claim keys for the invariants the manager's cache must not be trusted with: one holder per
 * published host port on a node, and no name answered by both a service and a container on
 * one network. Each claim is written in the same transaction as its record, guarded by
 * "these keys are absent" and "nothing under these prefixes" — so exactly one of any number
 * of racing requests wins, through one manager or several. Pure: what to check and write.
 */
export interface Guards {
  /** Keys that must not exist. */
  readonly absent: string[];
  /** Prefixes under which no key may exist. */
  readonly empty: string[];
  /** Keys to write (value: who holds it, for the loser's error). */
  readonly puts: [string, string][];
}

const none = (): Guards => ({ absent: [], empty: [], puts: [] });

export function mergeGuards(...all: Guards[]): Guards {
  return { absent: all.flatMap((g) => g.absent), empty: all.flatMap((g) => g.empty), puts: all.flatMap((g) => g.puts) };
}

/** Who holds a container's port, as the loser's error names it. */
export const containerHolder = (c: Pick<Container, 'name' | 'node'>): string => `container ${c.name} on node ${c.node}`;
export const serviceHolder = (s: Pick<Service, 'name'>): string => `service ${s.name} (ingress, every node)`;

/**
 * A container's `-p` on its node: no ingress port of the same number, and on its node nothing
 * on the same address or on every address ('' takes every address, so nothing at all).
 */
export function containerPortGuards(c: Pick<Container, 'name' | 'node' | 'ports'>): Guards {
  const g = none();
  for (const p of c.ports ?? []) {
    g.absent.push(keys.port(p.protocol, p.hostPort, '', ''));
    if (p.hostIp === '') g.empty.push(keys.portNodePrefix(p.protocol, p.hostPort, c.node));
    else g.absent.push(keys.port(p.protocol, p.hostPort, c.node, p.hostIp), keys.port(p.protocol, p.hostPort, c.node, ''));
    g.puts.push([keys.port(p.protocol, p.hostPort, c.node, p.hostIp), containerHolder(c)]);
  }
  return g;
}

/** The host-port claim keys a Docker endpoint holds (its -p), to delete with it. */
export const endpointPortKeys = (ep: Pick<Endpoint, 'node' | 'ports'>): string[] => (ep.ports ?? []).map((p) => keys.port(p.protocol, p.hostPort, ep.node, p.hostIp));

/** How a Docker endpoint is named as a port's holder: its container's name once known. */
export const endpointHolderName = (ep: Pick<Endpoint, 'name' | 'aliases'>): string => ep.aliases[0] ?? ep.name;

/** The claim keys a container holds, to delete with it. */
export const containerPortKeys = (c: Pick<Container, 'node' | 'ports'>): string[] =>
  (c.ports ?? []).map((p: PortMapping) => keys.port(p.protocol, p.hostPort, c.node, p.hostIp));

/**
 * A service: its ingress ports are held on every node, so nothing may publish them anywhere;
 * a host-mode port only must not be an ingress port (its tasks claim it node by node). Its
 * name is reserved on each of its networks, where no endpoint may answer to it.
 */
export function serviceGuards(s: Pick<Service, 'name' | 'networks' | 'publish'>): Guards {
  const g = none();
  for (const p of s.publish ?? []) {
    if (p.mode === 'ingress') {
      g.empty.push(keys.portPrefix(p.protocol, p.published));
      g.puts.push([keys.port(p.protocol, p.published, '', ''), serviceHolder(s)]);
    } else g.absent.push(keys.port(p.protocol, p.published, '', ''));
  }
  for (const net of s.networks) {
    g.absent.push(keys.serviceName(net, s.name));
    g.empty.push(keys.endpointNamesPrefix(net, s.name));
    g.puts.push([keys.serviceName(net, s.name), s.name]);
  }
  return g;
}

export const serviceKeys = (s: Pick<Service, 'name' | 'networks' | 'publish'>): string[] => [
  ...(s.publish ?? []).filter((p: PublishSpec) => p.mode === 'ingress').map((p) => keys.port(p.protocol, p.published, '', '')),
  ...s.networks.map((net) => keys.serviceName(net, s.name)),
];

/** Names an endpoint answers to (its own and its aliases); a service's virtual IP answers for the service itself. */
const answersTo = (ep: Endpoint): string[] => (isVirtualIp(ep) ? [] : [...new Set([ep.name, ...ep.aliases].map(nameKey))]);

/** An endpoint: none of its names may be a service's on its network. */
export function endpointNameGuards(ep: Endpoint): Guards {
  const g = none();
  for (const n of answersTo(ep)) {
    g.absent.push(keys.serviceName(ep.networkId, n));
    g.puts.push([keys.endpointName(ep.networkId, n, ep.name), ep.name]);
  }
  return g;
}

export const endpointNameKeys = (ep: Endpoint): string[] => answersTo(ep).map((n) => keys.endpointName(ep.networkId, n, ep.name));

/** The first key after every key starting with `prefix`: etcd's range end for a prefix. */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/**
 * Adds the guards' comparisons to a transaction. The etcd3 client has no builder for a range
 * comparison, so it goes in as etcd's own Compare: "Version == 0 over [prefix, end)" holds
 * exactly when no key exists there (etcd compares an empty range against a missing key).
 */
export function applyGuards(txn: ComparatorBuilder, g: Guards): ComparatorBuilder {
  for (const key of g.absent) txn = txn.and(key, 'Create', '==', 0);
  const raw = (txn as unknown as { request: { compare: Promise<ICompare>[] } }).request.compare;
  for (const prefix of g.empty) {
    raw.push(
      Promise.resolve({ key: Buffer.from(prefix), range_end: prefixEnd(prefix), target: CompareTarget.Version, result: CompareResult.Equal, version: 0 }),
    );
  }
  return txn;
}
