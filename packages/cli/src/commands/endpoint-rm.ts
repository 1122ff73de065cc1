import { defineCommand, type OptionSpecs, type VerbSpec } from '../args.js';
import { errorLine, UsageError } from '../errors.js';

const SPEC = {
  path: 'endpoint rm',
  aliases: ['remove'],
  summary: 'Delete endpoints from a network, freeing their addresses; prints each name removed.',
  operands: 'NAME...',
  min: 1,
  max: Infinity,
  options: {
    network: { type: 'string', value: 'NET', help: 'Network name or ID (required)' },
  },
} as const satisfies VerbSpec<OptionSpecs>;

export const endpointRm = defineCommand(SPEC, async ({ values, positionals }, { client, out, err }) => {
  const network = values.network;
  if (!network) throw new UsageError(`"ctmgr ${SPEC.path}" needs --network`, `ctmgr ${SPEC.path}`);
  let failed = false;
  for (const name of positionals) {
    try {
      await client.deleteEndpoint(network, name);
      out.write(`${name}\n`);
    } catch (e) {
      err.write(errorLine(e));
      failed = true;
    }
  }
  return failed ? 1 : 0;
});
