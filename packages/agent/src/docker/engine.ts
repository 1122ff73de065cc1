import { request, type IncomingMessage } from 'node:http';
import type { AgentConfig } from '@ctnet/core';

/** The few facts of a Docker network the plugin needs. */
export interface DockerNetwork {
  readonly id: string;
  readonly name: string;
  readonly driver: string;
  readonly options: Readonly<Record<string, string>>;
}

/** A container's attachment to one network, as Docker records it. */
export interface DockerAttachment {
  readonly networkId: string;
  readonly endpointId: string;
  readonly ip: string;
  readonly aliases: readonly string[];
}

export interface DockerContainer {
  readonly id: string;
  readonly name: string; // without Docker's leading "/"
  readonly attachments: readonly DockerAttachment[];
}

export interface DockerEvent {
  readonly type: string;
  readonly action: string;
  readonly actorId: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** This host's dockerd, through its Engine API (DOCKER_HOST), as every Docker client reaches it. */
export interface DockerEngine {
  listNetworks(): Promise<DockerNetwork[]>;
  /** undefined when Docker has no such network (yet). */
  inspectNetwork(id: string): Promise<DockerNetwork | undefined>;
  createNetwork(body: Record<string, unknown>): Promise<string>;
  /** Missing is fine (already gone). */
  removeNetwork(id: string): Promise<void>;
  /**
   * Every container, running or not, with its attachments (inspected: the list lacks aliases);
   * complete is false when one of them could not be inspected (a start holding it too long).
   */
  listContainers(): Promise<{ containers: DockerContainer[]; complete: boolean }>;
  inspectContainer(id: string): Promise<DockerContainer | undefined>;
  /**
   * The containers on a network as libnetwork has them (name, endpoint, address): answered at
   * once, while a container that is starting cannot be inspected until it has started.
   */
  networkContainers(networkId: string): Promise<{ containerId: string; name: string; endpointId: string }[]>;
  /** Follows Docker's network events until closed; onEnd when the stream ends or fails (dockerd stopped). */
  events(onEvent: (e: DockerEvent) => void, onEnd: (err?: Error) => void): { close(): void };
}

export class DockerApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const TIMEOUT_MS = 10_000;

export function createDockerEngine(where: AgentConfig['dockerHost']): DockerEngine {
  const target = 'socketPath' in where ? { socketPath: where.socketPath } : { host: where.host, port: where.port };
  const call = (method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> =>
    new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(
        { ...target, method, path, timeout: TIMEOUT_MS, headers: { Host: 'docker', ...(data && { 'Content-Type': 'application/json', 'Content-Length': data.length }) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown = undefined;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = { message: text.slice(0, 500) };
            }
            resolve({ status: res.statusCode ?? 0, json });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`dockerd did not answer ${method} ${path} within ${TIMEOUT_MS / 1000} s`)));
      req.on('error', reject);
      req.end(data);
    });
  const ok = async (method: string, path: string, body?: unknown, allow: number[] = []): Promise<{ status: number; json: unknown }> => {
    const r = await call(method, path, body);
    if (r.status >= 400 && !allow.includes(r.status)) {
      const msg = (r.json as { message?: string } | undefined)?.message ?? `status ${r.status}`;
      throw new DockerApiError(r.status, `dockerd: ${method} ${path}: ${msg}`);
    }
    return r;
  };
  const network = (j: Record<string, unknown>): DockerNetwork => ({
    id: String(j.Id ?? ''),
    name: String(j.Name ?? ''),
    driver: String(j.Driver ?? ''),
    options: Object.fromEntries(Object.entries((j.Options as Record<string, unknown> | null) ?? {}).map(([k, v]) => [k, String(v)])),
  });
  const container = (j: Record<string, unknown>): DockerContainer => {
    const nets = ((j.NetworkSettings as Record<string, unknown> | undefined)?.Networks ?? {}) as Record<string, Record<string, unknown>>;
    return {
      id: String(j.Id ?? ''),
      name: String(j.Name ?? (j.Names as string[] | undefined)?.[0] ?? '').replace(/^\//, ''),
      attachments: Object.values(nets).map((n) => ({
        networkId: String(n.NetworkID ?? ''),
        endpointId: String(n.EndpointID ?? ''),
        ip: String(n.IPAddress ?? ''),
        aliases: Array.isArray(n.Aliases) ? n.Aliases.map(String) : [],
      })),
    };
  };
  const engine: DockerEngine = {
    async listNetworks() {
      const r = await ok('GET', '/networks');
      return (Array.isArray(r.json) ? r.json : []).map((j) => network(j as Record<string, unknown>));
    },
    async inspectNetwork(id) {
      const r = await ok('GET', `/networks/${encodeURIComponent(id)}`, undefined, [404]);
      return r.status === 404 ? undefined : network(r.json as Record<string, unknown>);
    },
    async createNetwork(body) {
      const r = await ok('POST', '/networks/create', body);
      return String((r.json as { Id?: string }).Id ?? '');
    },
    async removeNetwork(id) {
      await ok('DELETE', `/networks/${encodeURIComponent(id)}`, undefined, [404]);
    },
    async listContainers() {
      const r = await ok('GET', '/containers/json?all=1');
      const ids = (Array.isArray(r.json) ? r.json : []).map((j) => String((j as { Id?: string }).Id ?? ''));
      const all = await Promise.allSettled(ids.map((id) => engine.inspectContainer(id)));
      const containers = all.flatMap((r) => (r.status === 'fulfilled' && r.value ? [r.value] : []));
      return { containers, complete: all.every((r) => r.status === 'fulfilled') };
    },
    async inspectContainer(id) {
      const r = await ok('GET', `/containers/${encodeURIComponent(id)}/json`, undefined, [404]);
      return r.status === 404 ? undefined : container(r.json as Record<string, unknown>);
    },
    async networkContainers(networkId) {
      const r = await ok('GET', `/networks/${encodeURIComponent(networkId)}`, undefined, [404]);
      if (r.status === 404) return [];
      const list = ((r.json as { Containers?: Record<string, { Name?: string; EndpointID?: string }> }).Containers ?? {}) as Record<string, { Name?: string; EndpointID?: string }>;
      return Object.entries(list).map(([containerId, c]) => ({ containerId, name: String(c.Name ?? ''), endpointId: String(c.EndpointID ?? '') }));
    },
    events(onEvent, onEnd) {
      let ended = false;
      const end = (err?: Error) => {
        if (ended) return;
        ended = true;
        onEnd(err);
      };
      const filters = encodeURIComponent(JSON.stringify({ type: ['network'] }));
      const req = request({ ...target, method: 'GET', path: `/events?filters=${filters}`, headers: { Host: 'docker' } }, (res: IncomingMessage) => {
        if ((res.statusCode ?? 0) >= 400) {
          res.resume();
          end(new Error(`dockerd refused the event stream: status ${res.statusCode}`));
          return;
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          if (buf.length > 1 << 20) buf = ''; // a runaway line: drop it rather than grow without bound
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            try {
              const j = JSON.parse(line) as { Type?: string; Action?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
              onEvent({ type: j.Type ?? '', action: j.Action ?? '', actorId: j.Actor?.ID ?? '', attributes: j.Actor?.Attributes ?? {} });
            } catch {
              // not an event: skip it
            }
          }
        });
        res.on('end', () => end());
        res.on('error', (e) => end(e));
      });
      req.on('error', (e) => end(e));
      req.end();
      return { close: () => (ended = true, req.destroy()) };
    },
  };
  return engine;
}
