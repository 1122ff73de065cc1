import { parseEndpointRequest } from '@ctnet/core';
import { defineCommand, type OptionSpecs, type VerbSpec } from '../args.js';

const CONNECT = {
  path: 'network connect',
  summary: 'Connect a running container to a further network (a new interface: eth1, ...); prints its address.',
  operands: 'NETWORK CONTAINER',
  min: 2,
  max: 2,
  options: {
    ip: { type: 'string', value: 'IP', help: 'Static address on that network (default: the next free one)' },
    alias: { type: 'string', multiple: true, value: 'ALIAS', help: 'Extra DNS name on that network' },
  },
} as const satisfies VerbSpec<OptionSpecs>;

export const networkConnect = defineCommand(CONNECT, async ({ values, positionals }, { client, out }) => {
  const [network, container] = positionals as [string, string];
  // the manager's own checks (names, address form), run before the call
  parseEndpointRequest({ network, node: container, name: container, aliases: values.alias ?? [], ip: values.ip ?? '' });
  const ep = await client.connectNetwork({ network, container, ip: values.ip ?? '', aliases: values.alias ?? [] });
  out.write(`${ep.ip}\n`);
  return 0;
});

const DISCONNECT = {
  path: 'network disconnect',
  summary: 'Disconnect a container from a network (its interface there goes away); prints the released address.',
  operands: 'NETWORK CONTAINER',
  min: 2,
  max: 2,
  options: {},
} as const satisfies VerbSpec<OptionSpecs>;

export const networkDisconnect = defineCommand(DISCONNECT, async ({ positionals }, { client, out }) => {
  const [network, container] = positionals as [string, string];
  const res = await client.disconnectNetwork(network, container);
  out.write(`${res.ip}\n`);
  return 0;
});
