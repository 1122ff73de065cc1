import { defineCommand, type OptionSpecs, type VerbSpec } from '../args.js';
import { errorLine } from '../errors.js';

const SPEC = {
  path: 'network rm',
  aliases: ['remove'],
  summary: 'Remove networks that have no endpoints; prints each name removed.',
  operands: 'NAME...',
  min: 1,
  max: Infinity,
  options: {},
} as const satisfies VerbSpec<OptionSpecs>;

export const networkRm = defineCommand(SPEC, async ({ positionals }, { client, out, err }) => {
  let failed = false;
  for (const name of positionals) {
    try {
      await client.removeNetwork(name);
      out.write(`${name}\n`);
    } catch (e) {
      err.write(errorLine(e));
      failed = true;
    }
  }
  return failed ? 1 : 0;
});
