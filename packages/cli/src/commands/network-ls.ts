import type { Network } from '@ctnet/proto';
import { defineCommand, formatOption, type OptionSpecs, parseFormat, type VerbSpec } from '../args.js';
import { formatJson, networkTable, networkView } from '../output.js';

const FORMATS = ['table', 'json'] as const;

const SPEC = {
  path: 'network ls',
  aliases: ['list'],
  summary: 'List networks.',
  operands: '',
  min: 0,
  max: 0,
  options: formatOption(FORMATS, 'table'),
} as const satisfies VerbSpec<OptionSpecs>;

export const networkLs = defineCommand(SPEC, async ({ values }, { client, out }) => {
  const format = parseFormat(values.format, FORMATS, 'table', SPEC.path);
  const rows = (await client.listNetworks())
    .flatMap((s) => (s.network ? [{ network: s.network, endpoints: s.endpoints }] : []))
    .sort((a, b) => byName(a.network, b.network));
  out.write(
    format === 'json'
      ? formatJson(rows.map((r) => ({ ...networkView(r.network), endpointCount: r.endpoints })))
      : networkTable(rows),
  );
  return 0;
});

const byName = (a: Network, b: Network): number => a.name.localeCompare(b.name, 'en');
