import type { ContainerDetail } from '@ctnet/proto';
import { defineCommand, formatOption, type OptionSpecs, parseFormat, type VerbSpec } from '../args.js';
import { errorLine } from '../errors.js';
import { containerSummary, containerView, formatJson, shortId } from '../output.js';
import { networkNames } from './network-names.js';

const FORMATS = ['json', 'table'] as const;

const SPEC = {
  path: 'inspect',
  summary: 'Show containers in detail: command, environment, DNS and endpoints (JSON by default).',
  operands: 'NAME...',
  min: 1,
  max: Infinity,
  options: formatOption(FORMATS, 'json'),
} as const satisfies VerbSpec<OptionSpecs>;

/** Like `docker inspect`: prints what it found, one error line per name it did not. */
export const containerInspect = defineCommand(SPEC, async ({ values, positionals }, { client, out, err }) => {
  const format = parseFormat(values.format, FORMATS, 'json', SPEC.path);
  const found: ContainerDetail[] = [];
  let failed = false;
  for (const name of positionals) {
    try {
      found.push(await client.inspectContainer(name));
    } catch (e) {
      err.write(errorLine(e));
      failed = true;
    }
  }
  const needed = found.some((d) => d.endpoints.length > 0);
  if (format === 'json') {
    const name = await networkNames(client, needed, (id) => id);
    out.write(formatJson(found.map((d) => containerView(d, name))));
  } else {
    const name = await networkNames(client, needed, shortId);
    out.write(found.map((d) => containerSummary(d, name)).join('\n'));
  }
  return failed ? 1 : 0;
});
