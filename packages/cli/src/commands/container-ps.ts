import { Container, type ContainerDetail, type Endpoint } from '@ctnet/proto';
import { defineCommand, formatOption, type OptionSpecs, parseFormat, type VerbSpec } from '../args.js';
import { containerTable, containerView, formatJson, shortId } from '../output.js';
import { networkNames } from './network-names.js';

const FORMATS = ['table', 'json'] as const;

const SPEC = {
  path: 'ps',
  summary: 'List containers (ctnet\'s and, marked, Docker\'s on ctnet networks), optionally only those on one node.',
  operands: '',
  min: 0,
  max: 0,
  options: {
    node: { type: 'string', value: 'NODE', help: 'Only containers on this node' },
    ...formatOption(FORMATS, 'table'),
  },
} as const satisfies VerbSpec<OptionSpecs>;

export const containerPs = defineCommand(SPEC, async ({ values }, { client, out }) => {
  const format = parseFormat(values.format, FORMATS, 'table', SPEC.path);
  const node = values.node ?? '';
  const [own, endpoints] = await Promise.all([client.listContainers({ node }), client.listEndpoints({ network: '', node })]);
  const docker = dockerContainers(endpoints);
  const containers = [...own, ...docker].sort((a, b) => (a.container?.name ?? '').localeCompare(b.container?.name ?? '', 'en'));
  const needed = containers.some((d) => d.endpoints.length > 0);
  const fromDocker = new Set(docker);
  if (format === 'json') {
    const name = await networkNames(client, needed, (id) => id);
    out.write(formatJson(containers.map((d) => (fromDocker.has(d) ? { ...containerView(d, name), origin: 'docker' } : containerView(d, name)))));
  } else {
    out.write(containerTable(containers, await networkNames(client, needed, shortId), fromDocker));
  }
  return 0;
});

/**
 * Docker's containers on ctnet networks, as the cluster knows them: one per container name
 * and host (its endpoints on each network), named by the endpoint's first alias (Docker's
 * container name) once Docker has said it. Their ids are Docker's business ("docker ps").
 */
function dockerContainers(endpoints: readonly Endpoint[]): ContainerDetail[] {
  const groups = new Map<string, Endpoint[]>();
  for (const e of endpoints) {
    if (e.origin !== 'docker') continue;
    const key = `${e.node}/${e.aliases[0] ?? e.name}`;
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  return [...groups.values()].map((eps) => ({
    container: Container.fromPartial({
      name: eps[0]!.aliases[0] ?? eps[0]!.name,
      node: eps[0]!.node,
      createdAt: eps.map((e) => e.createdAt).sort()[0] ?? '',
      ports: eps.flatMap((e) => e.ports),
    }),
    endpoints: eps,
  }));
}
