import { parseEndpointRequest } from '@ctnet/core';
import type { CreateEndpointRequest } from '@ctnet/proto';
import { defineCommand, type OptionSpecs, type VerbSpec } from '../args.js';
import { UsageError } from '../errors.js';

const SPEC = {
  path: 'endpoint create',
  summary: 'Create an endpoint (an address on a network, placed on a node) and print its ID.',
  operands: 'NAME',
  min: 1,
  max: 1,
  options: {
    network: { type: 'string', value: 'NET', help: 'Network name or ID (required)' },
    node: { type: 'string', value: 'NODE', help: 'Node the endpoint lives on (required)' },
    ip: { type: 'string', value: 'IP', help: 'Static address (default: the next free one)' },
    mac: { type: 'string', value: 'MAC', help: 'MAC address (default: derived from the IP)' },
    alias: { type: 'string', multiple: true, value: 'ALIAS', help: 'Extra DNS name on the network' },
  },
} as const satisfies VerbSpec<OptionSpecs>;

export const endpointCreate = defineCommand(SPEC, async ({ values, positionals }, { client, out }) => {
  for (const flag of ['network', 'node'] as const) {
    if (!values[flag]) throw new UsageError(`"ctmgr ${SPEC.path}" needs --${flag}`, `ctmgr ${SPEC.path}`);
  }
  const request: CreateEndpointRequest = {
    network: values.network ?? '',
    node: values.node ?? '',
    name: positionals[0] ?? '',
    aliases: values.alias ?? [],
    ip: values.ip ?? '',
    mac: values.mac ?? '',
    origin: '',
  };
  parseEndpointRequest(request); // the manager's own checks, run before the call
  const endpoint = await client.createEndpoint(request);
  out.write(`${endpoint.id}\n`);
  return 0;
});
