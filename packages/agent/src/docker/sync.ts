import { CtnetError, DOCKER_NETWORK_OPTION, ErrorCode, nameKey, parseName, type Endpoint, type Logger, type Network } from '@ctnet/core';
import type { UpdateEndpointRequest, Endpoint as WireEndpoint } from '@ctnet/proto';
import type { LocalState } from '../state.js';
import type { DockerBindings } from './bindings.js';
import { DockerApiError, type DockerContainer, type DockerEngine, type DockerNetwork } from './engine.js';
import { dockerNetworkRequest, type DockerManagerCalls } from './plugin.js';

/** Docker endpoints younger than this are never taken for leftovers (Docker may not list them yet). */
const GRACE_MS = 30_000;
const PASS_INTERVAL_MS = 10_000;

export interface DockerSyncDeps {
  readonly node: string;
  readonly state: LocalState;
  readonly engine: DockerEngine;
  readonly bindings: DockerBindings;
  readonly manager: DockerManagerCalls & { updateEndpoint(req: UpdateEndpointRequest): Promise<WireEndpoint> };
  ready(): boolean;
  unplug(endpointId: string): Promise<void>;
  /** Problems of ctnet networks on this host's Docker (a name held by another driver), by network id. */
  onProblems(problems: ReadonlyMap<string, string>): void;
  /** This host's Docker networks of other drivers (name -> driver): the manager refuses those names for new networks. */
  onForeignNetworks?(networks: ReadonlyMap<string, string>): void;
  now(): number;
  readonly log: Logger;
}

export interface DockerSync {
  /** A network made through this host's Docker: learn its name and make it in the cluster. */
  adopt(dockerNetworkId: string): void;
  /** Something changed (the state, Docker): a pass soon. */
  request(): void;
  stop(): void;
}

/** The names a Docker container's endpoint answers to in the cluster: its name and its aliases on that network. */
export function dockerNames(c: DockerContainer, aliases: readonly string[], own: string): string[] {
  const out: string[] = [];
  const seen = new Set([nameKey(own)]);
  for (const n of [c.name, ...aliases]) {
    try {
      const name = parseName(n, 'alias');
      if (seen.has(nameKey(name))) continue;
      seen.add(nameKey(name));
      out.push(name);
    } catch {
      // a name ctnet cannot serve (Docker allows more): Docker's own resolver still answers it locally
    }
  }
  return out;
}

/**
 * Keeps this host's Docker in step with the cluster, as Weave and Contiv did through the Docker
 * API: every ctnet overlay network exists in Docker under its name (made here, removed here
 * once gone from the cluster); a network made through Docker is made in the cluster; a Docker
 * container's names reach its ctnet endpoint (Docker tells drivers no names: they come from its
 * events and its API); and ctnet endpoints Docker no longer has (dockerd killed) are released.
 * Passes run on change and every 10 s; nothing here blocks a plugin call.
 */
export function createDockerSync(deps: DockerSyncDeps): DockerSync {
  const { state, engine, bindings, log } = deps;
  const adopting = new Set<string>();
  /** Docker endpoints of this host Docker has not listed, since when (this agent's clock). */
  const unheldSince = new Map<string, number>();
  let stopped = false;
  let running = false;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  let dockerDown = false;

  const overlays = (): Network[] => [...state.networks.values()].filter((n) => n.driver === 'overlay');

  const adopt = async (id: string): Promise<void> => {
    const deadline = deps.now() + 30_000;
    for (let wait = 10; !stopped && deps.now() < deadline; wait = Math.min(500, wait * 2)) {
      const b = bindings.network(id);
      if (!b?.pending) return; // bound meanwhile (the mirror), or removed
      try {
        const dn = deps.ready() ? await engine.inspectNetwork(id) : undefined;
        if (!dn) {
          await sleep(wait); // Docker stores the network once CreateNetwork has returned
          continue;
        }
        try {
          const made = await deps.manager.createNetwork(dockerNetworkRequest(deps.node, dn.name, b.pending));
          await bindings.setNetwork(id, { ctnet: made.id });
          log.info('network made through Docker is now a cluster network', { name: dn.name, id: made.id, subnet: made.subnet });
        } catch (err) {
          const e = CtnetError.from(err);
          const same = overlays().find((n) => nameKey(n.name) === nameKey(dn.name));
          if (e.code === ErrorCode.AlreadyExists && same && same.subnet === b.pending.subnet) {
            await bindings.setNetwork(id, { ctnet: same.id });
            return;
          }
          if (e.code === ErrorCode.Unavailable) {
            await sleep(wait);
            continue;
          }
          // Refused by the cluster (the name is another network's, the subnet was taken meanwhile):
          // the Docker network goes again, so nothing is half made.
          log.error(`docker network ${dn.name} was removed again: the cluster refused it`, { error: e.message });
          await bindings.dropNetwork(id);
          await engine.removeNetwork(id).catch((x: unknown) => log.warn('could not remove the refused Docker network', { name: dn.name, error: String(x) }));
        }
        return;
      } catch (err) {
        log.warn('adopting a Docker network failed; retrying', { id: id.slice(0, 12), error: String(err) });
        await sleep(wait);
      }
    }
  };

  /** Makes and removes Docker networks so that they match the cluster's overlay networks. */
  const mirror = async (dockerNets: readonly DockerNetwork[]): Promise<void> => {
    const problems = new Map<string, string>();
    const byName = new Map(dockerNets.map((d) => [nameKey(d.name), d]));
    for (const net of overlays()) {
      const d = byName.get(nameKey(net.name));
      if (!d) {
        try {
          const id = await engine.createNetwork({
            Name: net.name,
            CheckDuplicate: true,
            Driver: 'ctnet',
            Internal: net.internal,
            Attachable: true,
            IPAM: { Driver: 'ctnet', Config: [{ Subnet: net.subnet, Gateway: net.gateway }], Options: { [DOCKER_NETWORK_OPTION]: net.id } },
            Options: { [DOCKER_NETWORK_OPTION]: net.id },
            Labels: { [DOCKER_NETWORK_OPTION]: net.id },
          });
          log.info('network created in Docker', { name: net.name, docker: id.slice(0, 12) });
        } catch (err) {
          if (err instanceof DockerApiError && err.status === 409) problems.set(net.id, `Docker on node ${deps.node} already has a network named ${net.name}: ${err.message}`);
          else throw err;
        }
      } else if (d.driver !== 'ctnet') {
        problems.set(net.id, `Docker on node ${deps.node} has a ${d.driver} network named ${net.name}, so ctnet's cannot exist there; remove or rename it there ("docker network rm ${d.name}")`);
      } else if (bindings.network(d.id)?.ctnet !== net.id && (d.options[DOCKER_NETWORK_OPTION] ?? net.id) === net.id && !bindings.network(d.id)?.pending) {
        await bindings.setNetwork(d.id, { ctnet: net.id }); // an agent that lost its file, or a network it made before
      }
    }
    for (const d of dockerNets) {
      if (d.driver !== 'ctnet') continue;
      const b = bindings.network(d.id);
      if (b?.pending) {
        if (!adopting.has(d.id)) api.adopt(d.id); // an agent restarted while adopting
        continue;
      }
      const bound = b?.ctnet || d.options[DOCKER_NETWORK_OPTION] || '';
      const net = bound ? state.networks.get(bound) : overlays().find((n) => nameKey(n.name) === nameKey(d.name));
      if (net && nameKey(net.name) === nameKey(d.name)) continue;
      // Gone from the cluster (removed on another host, or with ctmgr): gone from Docker too.
      // Docker refuses while a local container still uses it; the next pass tries again.
      await engine.removeNetwork(d.id).then(
        () => log.info('network removed from Docker: it is gone from the cluster', { name: d.name }),
        (err: unknown) => log.warn('could not remove a Docker network that is gone from the cluster', { name: d.name, error: String(err) }),
      );
    }
    deps.onProblems(problems);
    deps.onForeignNetworks?.(new Map(dockerNets.filter((d) => d.driver !== 'ctnet').map((d) => [d.name, d.driver])));
  };

  /**
   * Names from Docker to the endpoints; endpoints Docker no longer has are released once this
   * agent has seen them missing for the grace period (its own clock: no comparison with the
   * manager's timestamps). With `complete` false (a container Docker would not describe), no
   * endpoint is judged missing.
   */
  const endpoints = async (containers: readonly DockerContainer[], complete: boolean): Promise<void> => {
    const held = new Set<string>(); // "<ctnet network>/<ip>" Docker still has
    for (const c of containers) {
      for (const a of c.attachments) {
        const net = bindings.network(a.networkId)?.ctnet;
        if (!net) continue;
        held.add(`${net}/${a.ip}`);
        if (!bindings.endpoint(a.endpointId)) {
          // A binding lost (the agent died before writing it): the cluster's address says which endpoint it is.
          const ep = [...state.endpoints.values()].find((e) => e.networkId === net && e.ip === a.ip && e.origin === 'docker' && nameKey(e.node) === nameKey(deps.node));
          if (ep) await bindings.setEndpoint(a.endpointId, { network: net, name: ep.name, id: ep.id, ip: ep.ip, mac: ep.mac, at: deps.now() });
        }
        await nameEndpoint(c, a.endpointId, a.aliases);
      }
    }
    if (!complete) return;
    const me = nameKey(deps.node);
    const now = deps.now();
    const missing = new Set<string>();
    for (const ep of [...state.endpoints.values()]) {
      if (ep.origin !== 'docker' || nameKey(ep.node) !== me || held.has(`${ep.networkId}/${ep.ip}`)) continue;
      missing.add(ep.id);
      const since = unheldSince.get(ep.id) ?? now;
      unheldSince.set(ep.id, since);
      if (now - since >= GRACE_MS) await release(ep);
    }
    for (const id of [...unheldSince.keys()]) if (!missing.has(id)) unheldSince.delete(id);
    for (const [id, b] of bindings.endpoints()) {
      // A young binding may be ahead of both the state and Docker's lists.
      if (!state.endpoints.has(endpointKey(b)) && !held.has(`${b.network}/${b.ip}`) && now - (b.at ?? 0) >= GRACE_MS) await bindings.dropEndpoint(id);
    }
  };

  const release = async (ep: Endpoint): Promise<void> => {
    log.warn('releasing a Docker endpoint Docker no longer has (dockerd stopped without releasing it?)', { name: ep.name, ip: ep.ip });
    await deps.unplug(ep.id);
    await deps.manager.deleteEndpoint(ep.networkId, ep.name).catch((err: unknown) => {
      if (!(err instanceof CtnetError && err.code === ErrorCode.NotFound)) log.warn('could not release', { name: ep.name, error: String(err) });
    });
  };

  /**
   * `nameOnly`: the container's name is known, its aliases not yet (they are kept, not
   * replaced). Updates of one endpoint run in the order they were asked for, so a name-only
   * update never lands after the full one it preceded.
   */
  const naming = new Map<string, Promise<void>>();
  const nameEndpoint = (c: DockerContainer, dockerEndpoint: string, aliases: readonly string[], nameOnly = false): Promise<void> => {
    const next = (naming.get(dockerEndpoint) ?? Promise.resolve()).then(() => applyNames(c, dockerEndpoint, aliases, nameOnly));
    naming.set(dockerEndpoint, next);
    void next.finally(() => naming.get(dockerEndpoint) === next && naming.delete(dockerEndpoint));
    return next;
  };
  const applyNames = async (c: DockerContainer, dockerEndpoint: string, aliases: readonly string[], nameOnly: boolean): Promise<void> => {
    const b = bindings.endpoint(dockerEndpoint);
    const ep = b && state.endpoints.get(endpointKey(b));
    if (!b || !ep) return;
    const want = dockerNames(c, nameOnly ? ep.aliases : aliases, ep.name);
    if (want.length === ep.aliases.length && want.every((n, i) => n === ep.aliases[i])) return;
    await deps.manager.updateEndpoint({ network: ep.networkId, name: ep.name, aliases: want, setAliases: true, ports: [], setPorts: false }).catch((err: unknown) => {
      log.warn('could not give a Docker endpoint its names', { container: c.name, error: String(err) });
    });
  };

  const pass = async (): Promise<void> => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        if (!deps.ready() || stopped) return;
        try {
          await mirror(await engine.listNetworks());
          const { containers, complete } = await engine.listContainers();
          await endpoints(containers, complete);
          if (dockerDown) log.info('Docker is reachable again');
          dockerDown = false;
        } catch (err) {
          if (!dockerDown) log.warn('cannot sync with Docker; retrying', { error: String(err) });
          dockerDown = true;
        }
      } while (again && !stopped);
    } finally {
      running = false;
    }
  };

  let soon: NodeJS.Timeout | undefined;
  const request = (): void => {
    if (soon || stopped) return;
    soon = setTimeout(() => {
      soon = undefined;
      void pass();
    }, 20);
  };

  // Names as soon as Docker connects a container (its events), not at the next pass.
  let events: { close(): void } | undefined;
  const follow = (delay: number): void => {
    if (stopped) return;
    events = engine.events(
      (e) => {
        if (e.type !== 'network') return;
        if (e.action === 'connect' && e.attributes.type === 'ctnet' && e.attributes.container) {
          // The name at once from the network (the container may still be starting), then its
          // aliases once Docker describes the container (after its start).
          const cid = e.attributes.container;
          void engine.networkContainers(e.actorId).then(
            async (list) => {
              const mine = list.find((x) => x.containerId === cid);
              if (mine?.name && mine.endpointId) await nameEndpoint({ id: cid, name: mine.name, attachments: [] }, mine.endpointId, [], true);
            },
            () => undefined,
          );
          void engine.inspectContainer(cid).then(
            async (c) => {
              for (const a of c?.attachments ?? []) if (c && bindings.network(a.networkId)?.ctnet) await nameEndpoint(c, a.endpointId, a.aliases);
            },
            () => request(),
          );
        } else if (e.action === 'create' || e.action === 'destroy') request();
      },
      () => {
        events = undefined;
        if (!stopped) setTimeout(() => (request(), follow(Math.min(5_000, delay * 2))), delay).unref();
      },
    );
  };
  follow(500);
  timer = setInterval(() => void pass(), PASS_INTERVAL_MS);
  timer.unref();

  const api: DockerSync = {
    adopt(id) {
      if (adopting.has(id)) return;
      adopting.add(id);
      void adopt(id).finally(() => adopting.delete(id));
    },
    request,
    stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(soon);
      events?.close();
    },
  };
  return api;
}

/** How the local state keys endpoints. */
const endpointKey = (b: { network: string; name: string }): string => `${b.network}/${nameKey(b.name)}`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
