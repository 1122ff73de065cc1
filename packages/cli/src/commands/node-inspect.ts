import type { NodeDetail } from '@ctnet/proto';
import { defineCommand, formatOption, type OptionSpecs, parseFormat, type VerbSpec } from '../args.js';
import { errorLine } from '../errors.js';
import { formatJson, nodeDetailView, nodeSummary } from '../output.js';

const FORMATS = ['json', 'table'] as const;

const SPEC = {
  path: 'node inspect',
  summary: 'Show nodes in detail: address, status, agent lag and endpoints (JSON by default).',
  operands: 'NAME...',
  min: 1,
  max: Infinity,
  options: formatOption(FORMATS, 'json'),
} as const satisfies VerbSpec<OptionSpecs>;

export const nodeInspect = defineCommand(SPEC, async ({ values, positionals }, { client, out, err }) => {
  const format = parseFormat(values.format, FORMATS, 'json', SPEC.path);
  const found: NodeDetail[] = [];
  let failed = false;
  for (const name of positionals) {
    try {
      found.push(await client.inspectNode(name));
    } catch (e) {
      err.write(errorLine(e));
      failed = true;
    }
  }
  if (format === 'json') out.write(formatJson(found.map(nodeDetailView)));
  else out.write(found.map(nodeSummary).join('\n'));
  return failed ? 1 : 0;
});
