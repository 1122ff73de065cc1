import { defineCommand, formatOption, type OptionSpecs, parseFormat, type VerbSpec } from '../args.js';
import { formatJson, nodeTable, nodeView } from '../output.js';

const FORMATS = ['table', 'json'] as const;

const SPEC = {
  path: 'node ls',
  aliases: ['list'],
  summary: 'List nodes with their status and how far their agent lags behind the state.',
  operands: '',
  min: 0,
  max: 0,
  options: formatOption(FORMATS, 'table'),
} as const satisfies VerbSpec<OptionSpecs>;

export const nodeLs = defineCommand(SPEC, async ({ values }, { client, out }) => {
  const format = parseFormat(values.format, FORMATS, 'table', SPEC.path);
  const nodes = [...(await client.listNodes()).nodes].sort((a, b) =>
    (a.node?.name ?? '').localeCompare(b.node?.name ?? '', 'en'),
  );
  out.write(format === 'json' ? formatJson(nodes.map(nodeView)) : nodeTable(nodes));
  return 0;
});
