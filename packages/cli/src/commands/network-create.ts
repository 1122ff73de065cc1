import { parseKeyValues, parseNetworkRequest } from '@ctnet/core';
import type { CreateNetworkRequest } from '@ctnet/proto';
import { defineCommand, type OptionSpecs, type VerbSpec } from '../args.js';

const SPEC = {
  path: 'network create',
  summary: 'Create a network and print its ID.',
  operands: 'NAME',
  min: 1,
  max: 1,
  options: {
    driver: { type: 'string', short: 'd', value: 'DRIVER', help: 'overlay (default), bridge or macvlan' },
    subnet: { type: 'string', value: 'CIDR', help: 'Subnet, e.g. 10.20.0.0/24 (default: the next free one from the pools)' },
    gateway: { type: 'string', value: 'IP', help: 'Gateway address (default: first host of the subnet)' },
    'ip-range': { type: 'string', value: 'CIDR', help: 'Allocate endpoint addresses only from this range of the subnet' },
    'aux-address': { type: 'string', multiple: true, value: 'NAME=IP', help: 'Reserve an address so it is never allocated' },
    attachable: { type: 'boolean', help: 'Let standalone endpoints attach' },
    internal: { type: 'boolean', help: 'Give the network no route to the outside' },
    opt: { type: 'string', short: 'o', multiple: true, value: 'KEY=VALUE', help: 'Driver option: mtu, vni (overlay), parent (macvlan)' },
    label: { type: 'string', multiple: true, value: 'KEY=VALUE', help: 'Label the network' },
    node: { type: 'string', value: 'NODE', help: 'bridge: live on this node only, with exactly --subnet (default: every node, a subnet each from the pool)' },
  },
} as const satisfies VerbSpec<OptionSpecs>;

export const networkCreate = defineCommand(SPEC, async ({ values, positionals }, { client, out }) => {
  const request: CreateNetworkRequest = {
    name: positionals[0] ?? '',
    driver: values.driver ?? '',
    subnet: values.subnet ?? '',
    gateway: values.gateway ?? '',
    ipRange: values['ip-range'] ?? '',
    auxAddresses: parseKeyValues(values['aux-address'] ?? [], '--aux-address'),
    attachable: values.attachable ?? false,
    internal: values.internal ?? false,
    options: parseKeyValues(values.opt ?? [], '--opt'),
    labels: parseKeyValues(values.label ?? [], '--label'),
    node: values.node ?? '',
  };
  // The manager validates too; checking here with the same function fails fast, even offline.
  parseNetworkRequest(request);
  const network = await client.createNetwork(request);
  out.write(`${network.id}\n`);
  return 0;
});
