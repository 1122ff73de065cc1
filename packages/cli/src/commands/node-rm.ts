import { defineCommand, type OptionSpecs, type VerbSpec } from '../args.js';
import { errorLine } from '../errors.js';

const SPEC = {
  path: 'node rm',
  aliases: ['remove'],
  summary: 'Remove nodes from the cluster; prints each name removed.',
  operands: 'NAME...',
  min: 1,
  max: Infinity,
  options: {
    force: { type: 'boolean', short: 'f', help: 'Remove the node even if it is up or has endpoints (they are deleted)' },
  },
} as const satisfies VerbSpec<OptionSpecs>;

export const nodeRm = defineCommand(SPEC, async ({ values, positionals }, { client, out, err }) => {
  let failed = false;
  for (const name of positionals) {
    try {
      await client.removeNode(name, values.force ?? false);
      out.write(`${name}\n`);
    } catch (e) {
      err.write(errorLine(e));
      failed = true;
    }
  }
  return failed ? 1 : 0;
});
