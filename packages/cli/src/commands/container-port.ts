import { formatPortMapping, hostBinding, parseProtocol, type PortMapping } from '@ctnet/core';
import { portMappingFromWire } from '@ctnet/proto';
import { defineCommand, type OptionSpecs, type VerbSpec } from '../args.js';
import { UsageError } from '../errors.js';
import { requireContainer } from '../output.js';

const SPEC = {
  path: 'port',
  summary: 'List a container\'s published ports, or the host address of one of them (like docker port).',
  operands: 'NAME [PORT[/PROTO]]',
  min: 1,
  max: 2,
  options: {},
} as const satisfies VerbSpec<OptionSpecs>;

export const containerPort = defineCommand(SPEC, async ({ positionals }, { client, out }) => {
  const [name, wanted] = positionals as [string, string | undefined];
  const c = requireContainer((await client.inspectContainer(name)).container);
  let ports: PortMapping[] = c.ports.map((p) => portMappingFromWire(p, name));
  if (wanted !== undefined) {
    const [portText, proto] = wanted.split('/') as [string, string | undefined];
    const port = Number(portText);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`"${wanted}" is not a port; write e.g. 80 or 53/udp`, `ctmgr ${SPEC.path}`);
    const protocol = parseProtocol(proto ?? 'tcp', `"${wanted}"`);
    ports = ports.filter((p) => p.containerPort === port && p.protocol === protocol);
    if (ports.length === 0) throw new UsageError(`no public port '${port}/${protocol}' published for ${c.name}`, `ctmgr ${SPEC.path}`);
    out.write(ports.map((p) => `${hostBinding(p)}\n`).join(''));
    return 0;
  }
  out.write(ports.map((p) => `${formatPortMapping(p)}\n`).join(''));
  return 0;
});
