import type { NetworkDetail } from '@ctnet/proto';
import { defineCommand, formatOption, type OptionSpecs, parseFormat, type VerbSpec } from '../args.js';
import { errorLine } from '../errors.js';
import { formatJson, networkDetailView, networkSummary } from '../output.js';

const FORMATS = ['json', 'table'] as const;

const SPEC = {
  path: 'network inspect',
  summary: 'Show networks in detail: settings, IPAM usage and endpoints (JSON by default).',
  operands: 'NAME...',
  min: 1,
  max: Infinity,
  options: formatOption(FORMATS, 'json'),
} as const satisfies VerbSpec<OptionSpecs>;

/** Like `docker network inspect`: prints what it found, one error line per name it did not. */
export const networkInspect = defineCommand(SPEC, async ({ values, positionals }, { client, out, err }) => {
  const format = parseFormat(values.format, FORMATS, 'json', SPEC.path);
  const found: NetworkDetail[] = [];
  let failed = false;
  for (const name of positionals) {
    try {
      found.push(await client.inspectNetwork(name));
    } catch (e) {
      err.write(errorLine(e));
      failed = true;
    }
  }
  if (format === 'json') out.write(formatJson(found.map(networkDetailView)));
  else out.write(found.map(networkSummary).join('\n'));
  return failed ? 1 : 0;
});
