import { defineCommand, type OptionSpecs, type VerbSpec } from '../args.js';
import { UsageError } from '../errors.js';

const SPEC = {
  path: 'logs',
  summary: "Print a container's output (fetched from its node's agent through the manager).",
  operands: 'NAME',
  min: 1,
  max: 1,
  options: {
    tail: { type: 'string', short: 'n', value: 'N', help: 'Only the last N lines' },
  },
} as const satisfies VerbSpec<OptionSpecs>;

export const containerLogs = defineCommand(SPEC, async ({ values, positionals }, { client, out }) => {
  const tail = values.tail === undefined ? undefined : Number(values.tail);
  if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) throw new UsageError(`--tail "${values.tail}" is not a number of lines`, `ctmgr ${SPEC.path}`);
  const text = (await client.containerLogs(positionals[0]!)).toString('utf8');
  if (tail === undefined) out.write(text);
  else {
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    out.write(lines.length && tail > 0 ? `${lines.slice(-tail).join('\n')}\n` : '');
  }
  return 0;
});
