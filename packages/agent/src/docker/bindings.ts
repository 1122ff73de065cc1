import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * What the plugin must remember across its own and dockerd's restarts, since dockerd never
 * sends CreateNetwork again for a network it already has: which ctnet network each Docker
 * network is, and which ctnet endpoint each Docker endpoint is. Kept in one small JSON file,
 * written (atomically) before the call that made the change is answered.
 */
export interface NetworkBinding {
  /** The ctnet network id; '' while a network made through Docker is still being created in the cluster. */
  readonly ctnet: string;
  /** Set while pending: what the cluster network is to be made with. */
  readonly pending?: { readonly subnet: string; readonly gateway: string; readonly internal: boolean; readonly options: Readonly<Record<string, string>> };
}

export interface EndpointBinding {
  readonly network: string; // ctnet network id
  readonly name: string; // ctnet endpoint name
  readonly id: string; // ctnet endpoint id (names its veth)
  readonly ip: string;
  readonly mac: string;
  /** While joined: the sandbox, and whether this endpoint gave it the route to the resolver address. */
  readonly sandbox?: string;
  readonly routesDns?: boolean;
  /** When this agent made it (its own clock): a young binding is not yet in the state or in Docker's lists. */
  readonly at?: number;
}

export interface DockerBindings {
  network(dockerId: string): NetworkBinding | undefined;
  networks(): ReadonlyMap<string, NetworkBinding>;
  setNetwork(dockerId: string, b: NetworkBinding): Promise<void>;
  dropNetwork(dockerId: string): Promise<void>;
  endpoint(dockerId: string): EndpointBinding | undefined;
  endpoints(): ReadonlyMap<string, EndpointBinding>;
  setEndpoint(dockerId: string, b: EndpointBinding): Promise<void>;
  dropEndpoint(dockerId: string): Promise<void>;
}

export async function loadDockerBindings(file: string): Promise<DockerBindings> {
  const nets = new Map<string, NetworkBinding>();
  const eps = new Map<string, EndpointBinding>();
  try {
    const saved = JSON.parse(await readFile(file, 'utf8')) as { networks?: Record<string, NetworkBinding>; endpoints?: Record<string, EndpointBinding> };
    for (const [k, v] of Object.entries(saved.networks ?? {})) nets.set(k, v);
    for (const [k, v] of Object.entries(saved.endpoints ?? {})) eps.set(k, v);
  } catch {
    // none yet (or unreadable: the periodic sync against Docker's API rebuilds what matters)
  }
  let writing: Promise<void> = Promise.resolve();
  let dirMade = false;
  const save = (): Promise<void> => {
    const text = JSON.stringify({ networks: Object.fromEntries(nets), endpoints: Object.fromEntries(eps) });
    // After a failed write (a full disk) the next one still runs.
    writing = writing.catch(() => undefined).then(async () => {
      if (!dirMade) await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      dirMade = true;
      await writeFile(`${file}.tmp`, text, { mode: 0o600 });
      await rename(`${file}.tmp`, file);
    });
    return writing;
  };
  return {
    network: (id) => nets.get(id),
    networks: () => nets,
    async setNetwork(id, b) {
      nets.set(id, b);
      await save();
    },
    async dropNetwork(id) {
      if (nets.delete(id)) await save();
    },
    endpoint: (id) => eps.get(id),
    endpoints: () => eps,
    async setEndpoint(id, b) {
      eps.set(id, b);
      await save();
    },
    async dropEndpoint(id) {
      if (eps.delete(id)) await save();
    },
  };
}
