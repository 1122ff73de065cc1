import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Endpoint, Logger, Network } from '@ctnet/core';
import type { UpdateEndpointRequest } from '@ctnet/proto';
import type { LocalState } from '../state.js';
import { loadDockerBindings, type DockerBindings } from './bindings.js';
import { DockerApiError, type DockerContainer, type DockerEngine, type DockerNetwork } from './engine.js';
import { createDockerSync, dockerNames, type DockerSync } from './sync.js';

const silent: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
const net = (id: string, name: string, subnet: string): Network =>
  ({ id, name, driver: 'overlay', subnet, gateway: subnet.replace(/0\/24$/, '1'), ipRange: subnet, vni: 4096, mtu: 0, parent: '', internal: false, attachable: true, auxAddresses: {}, options: {}, labels: {}, createdAt: '' }) as Network;

describe('dockerNames', () => {
  it('is the container\'s name and its aliases on that network, valid DNS names only, without repeats or its own name', () => {
    const c: DockerContainer = { id: 'abc', name: 'web1', attachments: [] };
    expect(dockerNames(c, ['www', 'WEB1', 'abc123def456', 'bad_name!', 'www'], 'dk-1')).toEqual(['web1', 'www', 'abc123def456']);
  });
});

describe('the Docker sync', () => {
  let dir: string;
  let bindings: DockerBindings;
  let networks: Map<string, Network>;
  let endpoints: Map<string, Endpoint>;
  let dockerNets: DockerNetwork[];
  let containers: DockerContainer[];
  let updates: UpdateEndpointRequest[];
  let deleted: string[];
  let problems: ReadonlyMap<string, string>;
  let now: number;
  let sync: DockerSync | undefined;
  let emit: ((e: { type: string; action: string; actorId: string; attributes: Record<string, string> }) => void) | undefined;
  let onNetwork: { containerId: string; name: string; endpointId: string }[];
  let inspectHangs = false;

  const engine = (): DockerEngine => ({
    listNetworks: async () => dockerNets,
    inspectNetwork: async (id) => dockerNets.find((d) => d.id === id),
    async createNetwork(body) {
      if (dockerNets.some((d) => d.name === body.Name)) throw new DockerApiError(409, 'conflict');
      const id = `${String(body.Name)}-docker-id`.padEnd(64, '0');
      dockerNets.push({ id, name: String(body.Name), driver: String(body.Driver), options: body.Options as Record<string, string> });
      return id;
    },
    async removeNetwork(id) {
      dockerNets = dockerNets.filter((d) => d.id !== id);
    },
    listContainers: async () => ({ containers, complete: true }),
    inspectContainer: (id) => (inspectHangs ? new Promise(() => undefined) : Promise.resolve(containers.find((c) => c.id === id))),
    networkContainers: async () => onNetwork,
    events: (onEvent) => ((emit = onEvent), { close: () => undefined }),
  });
  const start = () =>
    (sync = createDockerSync({
      node: 'h1',
      state: { networks, endpoints, hasSnapshot: true } as unknown as LocalState,
      engine: engine(),
      bindings,
      manager: {
        createEndpoint: async () => {
          throw new Error('not here');
        },
        deleteEndpoint: async (_net, name) => void deleted.push(name),
        createNetwork: async () => {
          throw new Error('not here');
        },
        removeNetwork: async () => undefined,
        updateEndpoint: async (req) => (updates.push(req), {} as never),
      },
      ready: () => true,
      unplug: async () => undefined,
      onProblems: (p) => (problems = p),
      now: () => now,
      log: silent,
    }));
  const settle = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
    expect(cond()).toBe(true);
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ctnet-dsync-'));
    bindings = await loadDockerBindings(join(dir, 'docker.json'));
    networks = new Map([['n1', net('n1', 'app', '10.7.0.0/24')], ['n2', net('n2', 'taken', '10.8.0.0/24')]]);
    endpoints = new Map();
    dockerNets = [{ id: 'b'.repeat(64), name: 'taken', driver: 'bridge', options: {} }, { id: 'c'.repeat(64), name: 'gone', driver: 'ctnet', options: { 'ctnet.network': 'n9' } }];
    containers = [];
    updates = [];
    deleted = [];
    problems = new Map();
    now = Date.parse('2026-12-02T12:00:00Z');
    onNetwork = [];
    inspectHangs = false;
  });
  afterEach(() => {
    sync?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes every cluster network in Docker, says which name another driver holds, removes what the cluster no longer has', async () => {
    start().request();
    await settle(() => dockerNets.some((d) => d.name === 'app'));
    expect(dockerNets.find((d) => d.name === 'app')).toMatchObject({ driver: 'ctnet', options: { 'ctnet.network': 'n1' } });
    await settle(() => !dockerNets.some((d) => d.name === 'gone'));
    expect(problems.get('n2')).toMatch(/Docker on node h1 has a bridge network named taken.*docker network rm taken/);
    expect(dockerNets.find((d) => d.name === 'taken')?.driver).toBe('bridge'); // someone else's: left alone
  });

  it('gives endpoints their containers\' names, and releases those Docker no longer has once past the grace', async () => {
    const mine = (name: string, ip: string, createdAt: string): Endpoint => ({ id: `${name}-id`, networkId: 'n1', name, node: 'h1', ip, mac: '02:42:00:00:00:01', aliases: [], createdAt, container: '', origin: 'docker' });
    endpoints.set('n1/dk-a', mine('dk-a', '10.7.0.2', '2026-12-02T11:00:00Z'));
    endpoints.set('n1/dk-b', mine('dk-b', '10.7.0.3', '2026-12-02T11:00:00Z')); // Docker lost it
    endpoints.set('n1/dk-c', mine('dk-c', '10.7.0.4', '2026-12-02T11:59:50Z')); // too young to judge
    await bindings.setNetwork('d'.repeat(64), { ctnet: 'n1' });
    await bindings.setEndpoint('e'.repeat(64), { network: 'n1', name: 'dk-a', id: 'dk-a-id', ip: '10.7.0.2', mac: '02:42:00:00:00:01' });
    containers = [
      { id: 'f'.repeat(64), name: 'web', attachments: [{ networkId: 'd'.repeat(64), endpointId: 'e'.repeat(64), ip: '10.7.0.2', aliases: ['www', 'ffffffffffff'] }] },
      // Its binding never written (the agent died first): found again by the cluster's address.
      { id: '9'.repeat(64), name: 'young', attachments: [{ networkId: 'd'.repeat(64), endpointId: '8'.repeat(64), ip: '10.7.0.4', aliases: [] }] },
    ];
    start().request();
    await settle(() => updates.length >= 2);
    await new Promise((r) => setTimeout(r, 100)); // the pass is over
    expect(deleted).toEqual([]); // missing once is not gone: the grace runs on this agent's clock
    now += 31_000;
    sync!.request();
    await settle(() => deleted.length > 0);
    expect(updates[0]).toMatchObject({ network: 'n1', name: 'dk-a', aliases: ['web', 'www', 'ffffffffffff'], setAliases: true, setPorts: false });
    expect(deleted).toEqual(['dk-b']);
    expect(bindings.endpoint('8'.repeat(64))).toMatchObject({ network: 'n1', name: 'dk-c', ip: '10.7.0.4' });
    expect(updates.find((u) => u.name === 'dk-c')?.aliases).toEqual(['young']);
  });

  it('names a container\'s endpoint from the network at its connect event, while Docker cannot describe the starting container yet', async () => {
    endpoints.set('n1/dk-s', { id: 'dk-s-id', networkId: 'n1', name: 'dk-s', node: 'h1', ip: '10.7.0.9', mac: '02:42:00:00:00:09', aliases: [], createdAt: '', container: '', origin: 'docker' });
    await bindings.setNetwork('d'.repeat(64), { ctnet: 'n1' });
    await bindings.setEndpoint('7'.repeat(64), { network: 'n1', name: 'dk-s', id: 'dk-s-id', ip: '10.7.0.9', mac: '02:42:00:00:00:09' });
    inspectHangs = true; // starting: its inspect waits for the start
    onNetwork = [{ containerId: '6'.repeat(64), name: 'starting', endpointId: '7'.repeat(64) }];
    start();
    emit!({ type: 'network', action: 'connect', actorId: 'd'.repeat(64), attributes: { type: 'ctnet', container: '6'.repeat(64), name: 'app' } });
    await settle(() => updates.length > 0);
    expect(updates[0]).toMatchObject({ network: 'n1', name: 'dk-s', aliases: ['starting'], setAliases: true });
  });
});
