import { defineCommand, formatOption, type OptionSpecs, parseFormat, type VerbSpec } from '../args.js';
import { containerTable, containerView, formatJson, shortId } from '../output.js';
import { networkNames } from './network-names.js';

const FORMATS = ['table', 'json'] as const;

const SPEC = {
  path: 'ps',
  summary: 'List containers, optionally only those on one node.',
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
  const containers = [...(await client.listContainers({ node: values.node ?? '' }))].sort((a, b) =>
    (a.container?.name ?? '').localeCompare(b.container?.name ?? '', 'en'),
  );
  const needed = containers.some((d) => d.endpoints.length > 0);
  if (format === 'json') {
    const name = await networkNames(client, needed, (id) => id);
    out.write(formatJson(containers.map((d) => containerView(d, name))));
  } else {
    out.write(containerTable(containers, await networkNames(client, needed, shortId)));
  }
  return 0;
});
