import { nameKey } from '@ctnet/core';

/**
 * The only place etcd keys are spelled. Layout (all under /ctnet/v1/):
 *
 *   meta/cluster                  cluster-wide config, written once
 *   meta/networks-guard           bumped by every network create/remove: serialises those
 *                                 (rare) writes so overlap, name and VNI checks see a consistent table
 *   state/networks/<id>           Network                  } the desired state streamed to agents
 *   state/endpoints/<net>/<name>  Endpoint (name lowercased: names are unique per network)
 *   state/nodes/<name>            Node                     }
 *   state/containers/<name>       Container (names unique in the cluster, lowercased); a
 *                                 service's tasks are containers too, with their status
 *   state/services/<name>         Service (manager-side: agents learn of services through
 *                                 their tasks and VIP endpoints)
 *   ipam/<net>/<ip>               owner of the address: one key per address, so concurrent
 *                                 allocators never contend on a shared counter or bitmap
 *   ports/<proto>/<port>/<node>/<ip>  a published host port (ip 0.0.0.0 = every address; node * =
 *                                 an ingress port, held on every node), written in the same
 *                                 transaction as its container or service: one holder per port
 *   names/<net>/<name>            a service answering to <name> on network <net>
 *   names/<net>/<name>/<endpoint> an endpoint answering to <name> (its own name or an alias);
 *                                 a service and a container never share a name on a network,
 *                                 and both directions are checked in etcd, not in a cache
 *   locks/networks/<id>           present while a network is being removed; endpoint creation
 *                                 requires it absent, so no endpoint slips into a dying network
 *   status/alive/<node>           attached to the node's lease: present = ready
 *   status/acks/<node>            last state revision the node's agent fully applied
 *   pki/ca                        the cluster's root CA: certificate and key (managers only)
 *   pki/join/<role>               the join token's secret
 *   pki/issued/<role>/<name>      serials of the certificates honoured for that identity;
 *                                 deleted = revoked (a node's goes with its record)
 *   pki/rotated/<node>            during a CA rotation: the node renewed from the new CA
 */
export const ROOT = '/ctnet/v1/';
export const STATE_PREFIX = `${ROOT}state/`;

export const keys = {
  cluster: `${ROOT}meta/cluster`,
  networksGuard: `${ROOT}meta/networks-guard`,
  networksPrefix: `${STATE_PREFIX}networks/`,
  network: (id: string) => `${STATE_PREFIX}networks/${id}`,
  endpointsPrefix: `${STATE_PREFIX}endpoints/`,
  networkEndpointsPrefix: (networkId: string) => `${STATE_PREFIX}endpoints/${networkId}/`,
  endpoint: (networkId: string, name: string) => `${STATE_PREFIX}endpoints/${networkId}/${nameKey(name)}`,
  nodesPrefix: `${STATE_PREFIX}nodes/`,
  containersPrefix: `${STATE_PREFIX}containers/`,
  container: (name: string) => `${STATE_PREFIX}containers/${nameKey(name)}`,
  servicesPrefix: `${STATE_PREFIX}services/`,
  service: (name: string) => `${STATE_PREFIX}services/${nameKey(name)}`,
  leader: `${ROOT}election/orchestrator`,
  node: (name: string) => `${STATE_PREFIX}nodes/${nameKey(name)}`,
  claimsPrefix: (networkId: string) => `${ROOT}ipam/${networkId}/`,
  claim: (networkId: string, ip: string) => `${ROOT}ipam/${networkId}/${ip}`,
  /** One published host port; node '' = an ingress port (every node), ip '' = every address. */
  port: (protocol: string, port: number, node: string, ip: string) => `${ROOT}ports/${protocol}/${port}/${node === '' ? '*' : nameKey(node)}/${ip || '0.0.0.0'}`,
  portPrefix: (protocol: string, port: number) => `${ROOT}ports/${protocol}/${port}/`,
  portNodePrefix: (protocol: string, port: number, node: string) => `${ROOT}ports/${protocol}/${port}/${nameKey(node)}/`,
  serviceName: (networkId: string, name: string) => `${ROOT}names/${networkId}/${nameKey(name)}`,
  endpointName: (networkId: string, name: string, endpoint: string) => `${ROOT}names/${networkId}/${nameKey(name)}/${nameKey(endpoint)}`,
  endpointNamesPrefix: (networkId: string, name: string) => `${ROOT}names/${networkId}/${nameKey(name)}/`,
  namesPrefix: (networkId: string) => `${ROOT}names/${networkId}/`,
  networkLock: (networkId: string) => `${ROOT}locks/networks/${networkId}`,
  alivePrefix: `${ROOT}status/alive/`,
  alive: (node: string) => `${ROOT}status/alive/${nameKey(node)}`,
  acksPrefix: `${ROOT}status/acks/`,
  ack: (node: string) => `${ROOT}status/acks/${nameKey(node)}`,
  pkiCa: `${ROOT}pki/ca`,
  pkiJoin: (role: string) => `${ROOT}pki/join/${role}`,
  pkiIssuedPrefix: `${ROOT}pki/issued/`,
  pkiIssued: (role: string, name: string) => `${ROOT}pki/issued/${role}/${nameKey(name)}`,
  pkiRotatedPrefix: `${ROOT}pki/rotated/`,
  pkiRotated: (node: string) => `${ROOT}pki/rotated/${nameKey(node)}`,
} as const;

/** What a key under ROOT is, for code that watches a whole prefix. */
export type DecodedKey =
  | { kind: 'network'; id: string }
  | { kind: 'endpoint'; networkId: string; name: string; id: string }
  | { kind: 'node'; id: string }
  | { kind: 'container'; id: string }
  | { kind: 'service'; id: string }
  | { kind: 'claim'; networkId: string; ip: string }
  | { kind: 'alive'; node: string }
  | { kind: 'ack'; node: string }
  | { kind: 'other' };

export function decodeKey(key: string): DecodedKey {
  if (!key.startsWith(ROOT)) return { kind: 'other' };
  const parts = key.slice(ROOT.length).split('/');
  const [a, b, c, d] = parts;
  if (a === 'state' && b === 'networks' && c && parts.length === 3) return { kind: 'network', id: c };
  if (a === 'state' && b === 'endpoints' && c && d && parts.length === 4) {
    return { kind: 'endpoint', networkId: c, name: d, id: `${c}/${d}` };
  }
  if (a === 'state' && b === 'nodes' && c && parts.length === 3) return { kind: 'node', id: c };
  if (a === 'state' && b === 'containers' && c && parts.length === 3) return { kind: 'container', id: c };
  if (a === 'state' && b === 'services' && c && parts.length === 3) return { kind: 'service', id: c };
  if (a === 'ipam' && b && c && parts.length === 3) return { kind: 'claim', networkId: b, ip: c };
  if (a === 'status' && b === 'alive' && c) return { kind: 'alive', node: c };
  if (a === 'status' && b === 'acks' && c) return { kind: 'ack', node: c };
  return { kind: 'other' };
}
