import { Server } from '@grpc/grpc-js';
import { readFile } from 'node:fs/promises';
import { formatHostPort, invalidArgument, type ManagerConfig } from '@ctnet/core';
import { AgentServiceService, ManagerServiceService, ServerCertificates, serverCredentials, serverOptions } from '@ctnet/proto';
import { createEtcdStore, type ClusterConfig, type Store } from '@ctnet/store';
import { createAllocator } from './allocator.js';
import { createAgentService, createSessionRegistry } from './agent-service.js';
import { systemClock, type Clock, type Logger, type ManagerDeps } from './deps.js';
import { startEmbeddedEtcd, type EmbeddedEtcd } from './embedded-etcd.js';
import { startNodeGc } from './gc.js';
import { startOrchestrator, type Orchestrator } from './orchestrator.js';
import { createManagerService } from './grpc-adapter.js';
import { startHttpServer } from './http.js';
import { createManagerMetrics, registerClusterGauges } from './metrics.js';
import { assignableAddresses } from './handlers/networks.js';
import { statusOf } from './handlers/nodes.js';
import { ensureDefaultBridge } from './handlers/networks.js';
import { createClusterView } from './view.js';
import { createAuthority } from './authority.js';


const HEALTH_PROBE_MS = 2000;

/** The --etcd-* files, read once at start; a missing one is named with its flag. */
async function readEtcdTls(files: NonNullable<ManagerConfig['etcdTls']>): Promise<{ caPem: string; certPem?: string; keyPem?: string }> {
  const read = async (path: string, flag: string) => {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      throw invalidArgument(`${flag} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  };
  return {
    caPem: await read(files.caFile, '--etcd-cacert'),
    ...(files.certFile && files.keyFile && { certPem: await read(files.certFile, '--etcd-cert'), keyPem: await read(files.keyFile, '--etcd-key') }),
  };
}

/**
 * Healthy = the view is loaded and etcd answers now: a view loaded once says nothing about
 * etcd since (it keeps serving reads from memory while writes fail). A probe is one cheap read.
 */
async function checkHealth(view: { loaded: boolean; revision: number }, store: Store, endpoints: readonly string[], tlsReady: boolean): Promise<{ ok: boolean; detail: string }> {
  if (!view.loaded) return { ok: false, detail: `waiting for etcd at ${endpoints.join(',')}` };
  if (!tlsReady) return { ok: false, detail: 'waiting for the cluster CA (TLS not serving yet)' };
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${HEALTH_PROBE_MS} ms`)), HEALTH_PROBE_MS);
  });
  try {
    const revision = await Promise.race([store.currentRevision(), late]);
    return { ok: true, detail: `ok revision=${revision}` };
  } catch (err) {
    return { ok: false, detail: `etcd at ${endpoints.join(',')} is unreachable: ${err instanceof Error ? err.message : String(err)}` };
  } finally {
    clearTimeout(timer);
  }
}

export interface RunningManager {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly etcdEndpoints: readonly string[];
  readonly deps: ManagerDeps;
  close(): Promise<void>;
}

/**
 * Wires a manager: etcd (embedded or given), the cluster view, the API and agent stream on
 * one gRPC server, /metrics and /healthz. It starts serving at once; calls that need etcd
 * fail with UNAVAILABLE until etcd answers (retried with backoff, never a crash loop).
 */
export async function startManager(
  config: ManagerConfig,
  opts: { log: Logger; clock?: Clock; store?: Store },
): Promise<RunningManager> {
  const { log } = opts;
  let embedded: EmbeddedEtcd | undefined;
  let endpoints = config.etcdEndpoints;
  let etcdTls: { caPem: string; certPem?: string; keyPem?: string } | undefined;
  if (endpoints.length === 0) {
    embedded = await startEmbeddedEtcd(config.dataDir, config.embeddedEtcdPort, log);
    endpoints = [embedded.endpoint];
    etcdTls = embedded.tls;
  } else if (config.etcdTls) {
    etcdTls = await readEtcdTls(config.etcdTls);
  }
  const store = opts.store ?? createEtcdStore({ endpoints, ...(etcdTls && { tls: etcdTls }) });
  const metrics = createManagerMetrics();
  const cluster: { vxlanPort: number } = { vxlanPort: config.vxlanPort };
  const certs = new ServerCertificates();
  const sessions = createSessionRegistry();
  const authority = createAuthority({
    pki: store.pki,
    clock: opts.clock ?? systemClock,
    log,
    certs,
    dataDir: config.dataDir,
    nodeCertTtlMs: config.nodeCertTtlMs,
    onRevoked: (id) => id.startsWith('node/') && sessions.revoke(id.slice('node/'.length)),
    onCaRotated: () => sessions.renewAll(),
  });
  const view = createClusterView(store, log, endpoints.join(','), async () => {
    // TLS serves once the CA is loaded (or created, on an empty etcd): until then handshakes fail.
    await authority.load();
    const stored: ClusterConfig = await store.initCluster({ vxlanPort: config.vxlanPort });
    if (stored.vxlanPort !== config.vxlanPort) {
      log.warn(`the cluster already uses VXLAN port ${stored.vxlanPort} (stored in etcd); ignoring --vxlan-port ${config.vxlanPort}`);
    }
    cluster.vxlanPort = stored.vxlanPort;
    // The default "bridge" network exists before the first load, so every snapshot has it.
    // Not fatal: a pool that clashes with a user's network is logged, and runContainer tries again.
    try {
      await ensureDefaultBridge(deps); // deps is assigned by the time etcd has answered above
    } catch (err) {
      log.warn('could not create the default bridge network', { error: err instanceof Error ? err.message : String(err) });
    }
  });
  // The orchestrator needs the deps it is part of: it is filled in right below.
  let orchestrator: Orchestrator | undefined;
  const deps: ManagerDeps = {
    orchestrator: {
      kick: () => orchestrator?.kick(),
      expect: (id, change) => orchestrator?.expect(id, change),
      pendingReason: (id) => orchestrator?.pendingReason(id),
    },
    config,
    cluster,
    store,
    view,
    allocator: createAllocator(store, view, metrics),
    clock: opts.clock ?? systemClock,
    log,
    metrics,
    sessions,
    authority,
  };
  view.onChange(() => metrics.stateRevision.set(view.stateRevision));
  registerClusterGauges(metrics.registry, {
    ipam: () => [...view.networks.values()].map((n) => ({ network: n.name, allocated: view.claims(n.id).taken.size, assignable: assignableAddresses(n) })),
    nodes: () => {
      const counts = new Map<string, number>();
      return [...view.nodes.values()].map((n) => {
        const s = statusOf(deps, n, counts);
        return { node: n.name, ready: s.status === 'ready', lag: s.lag };
      });
    },
    etcdUp: async () => (await checkHealth(view, store, endpoints, true)).ok,
  });

  const server = new Server(serverOptions());
  // If a port is taken, stop what already runs (the view's retries, the embedded etcd) so
  // the process can exit instead of lingering half-started.
  const abandon = async (err: unknown): Promise<never> => {
    server.forceShutdown();
    await view.close();
    await authority.close();
    store.close();
    await embedded?.stop();
    throw err;
  };
  server.addService(ManagerServiceService, createManagerService(deps));
  server.addService(AgentServiceService, createAgentService(deps, sessions));
  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(formatHostPort(config.listen), serverCredentials(certs), (err, port) =>
      err ? reject(new Error(`cannot listen on ${formatHostPort(config.listen)} (${err.message}); pick another --listen`)) : resolve(port),
    ),
  ).catch(abandon);
  const http = await startHttpServer(config.http, metrics.registry, () => checkHealth(view, store, endpoints, authority.ready)).catch((err: Error) => abandon(new Error(`cannot serve --http on ${formatHostPort(config.http)} (${err.message}); pick another --http`)));
  const gc = startNodeGc(deps);
  orchestrator = startOrchestrator(deps);
  log.info('manager serving', { grpc: `${config.listen.host}:${grpcPort}`, http: `${config.http.host}:${http.port}`, etcd: endpoints.join(',') });

  return {
    grpcPort,
    httpPort: http.port,
    etcdEndpoints: endpoints,
    deps,
    async close() {
      gc.stop();
      await orchestrator?.stop();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await http.close();
      await view.close();
      await authority.close();
      store.close();
      await embedded?.stop();
    },
  };
}
