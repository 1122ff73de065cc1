import { defineCommand, type OptionSpecs, type VerbSpec } from '../args.js';
import { errorLine } from '../errors.js';

const SPEC = {
  path: 'rm',
  summary: 'Remove containers, stopping them and freeing their addresses; prints each name removed.',
  operands: 'NAME...',
  min: 1,
  max: Infinity,
  options: {
    // Accepted so `docker rm -f` habits and scripts work; removal always stops the container.
    force: { type: 'boolean', short: 'f', help: 'Accepted for Docker compatibility (removal always stops the container)' },
  },
} as const satisfies VerbSpec<OptionSpecs>;

export const containerRm = defineCommand(SPEC, async ({ positionals }, { client, out, err }) => {
  let failed = false;
  for (const name of positionals) {
    try {
      await client.removeContainer(name);
      out.write(`${name}\n`);
    } catch (e) {
      err.write(errorLine(e));
      failed = true;
    }
  }
  return failed ? 1 : 0;
});
