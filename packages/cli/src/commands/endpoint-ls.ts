import { defineCommand, formatOption, type OptionSpecs, parseFormat, type VerbSpec } from '../args.js';
import { endpointTable, endpointView, formatJson, shortId } from '../output.js';
import { networkNames } from './network-names.js';

const FORMATS = ['table', 'json'] as const;

const SPEC = {
  path: 'endpoint ls',
  aliases: ['list'],
  summary: 'List endpoints, optionally only those of one network or node.',
  operands: '',
  min: 0,
  max: 0,
  options: {
    network: { type: 'string', value: 'NET', help: 'Only endpoints on this network (name or ID)' },
    node: { type: 'string', value: 'NODE', help: 'Only endpoints placed on this node' },
    ...formatOption(FORMATS, 'table'),
  },
} as const satisfies VerbSpec<OptionSpecs>;

export const endpointLs = defineCommand(SPEC, async ({ values }, { client, out }) => {
  const format = parseFormat(values.format, FORMATS, 'table', SPEC.path);
  const endpoints = [
    ...(await client.listEndpoints({ network: values.network ?? '', node: values.node ?? '' })),
  ].sort((a, b) => a.name.localeCompare(b.name, 'en') || a.networkId.localeCompare(b.networkId, 'en'));
  if (format === 'json') {
    out.write(formatJson(endpoints.map(endpointView)));
    return 0;
  }
  out.write(endpointTable(endpoints, await networkNames(client, endpoints.length > 0, shortId)));
  return 0;
});
