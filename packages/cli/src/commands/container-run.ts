import { invalidArgument, parseContainerRequest, parseEndpointRequest, parseNetworkMode } from '@ctnet/core';
import type { RunContainerRequest } from '@ctnet/proto';
import { defineCommand, type OptionSpecs, type VerbSpec } from '../args.js';
import { UsageError } from '../errors.js';
import { requireContainer } from '../output.js';

const SPEC = {
  path: 'run',
  summary: 'Run a command in a new container joined to a network, and print the container ID.',
  operands: '[--] COMMAND [ARG...]',
  min: 1,
  max: Infinity,
  flagsEndAtOperand: true,
  options: {
    detach: { type: 'boolean', short: 'd', help: 'Run in the background (required: ctnet always does)' },
    name: { type: 'string', value: 'NAME', help: 'Container name, also its DNS name on the network (required)' },
    network: { type: 'string', value: 'NET', help: 'Network name or ID; or none, host, container:NAME (default: bridge)' },
    node: { type: 'string', value: 'NODE', help: 'Node to run on (default: the ready node with the fewest containers)' },
    ip: { type: 'string', value: 'IP', help: 'Static address (default: the next free one)' },
    'mac-address': { type: 'string', value: 'MAC', help: 'MAC address (default: derived from the IP)' },
    hostname: { type: 'string', value: 'NAME', help: 'Hostname inside the container (default: its name)' },
    dns: { type: 'string', multiple: true, value: 'IP', help: 'Nameserver for the container' },
    'dns-search': { type: 'string', multiple: true, value: 'DOMAIN', help: 'DNS search domain' },
    'network-alias': { type: 'string', multiple: true, value: 'ALIAS', help: 'Extra DNS name on the network' },
    env: { type: 'string', short: 'e', multiple: true, value: 'KEY=VALUE', help: 'Set an environment variable' },
    publish: { type: 'string', short: 'p', multiple: true, value: 'SPEC', help: 'Publish a port on the node: [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp]' },
    'publish-all': { type: 'boolean', short: 'P', help: 'Publish every exposed port on a free host port' },
    expose: { type: 'string', multiple: true, value: 'PORT[/PROTO]', help: 'Expose a port (seen by --link and -P)' },
    link: { type: 'string', multiple: true, value: 'NAME[:ALIAS]', help: 'Legacy link: /etc/hosts entry and ALIAS_PORT_* variables' },
  },
} as const satisfies VerbSpec<OptionSpecs>;

const usage = (problem: string): UsageError => new UsageError(problem, `ctmgr ${SPEC.path}`);

export const containerRun = defineCommand(SPEC, async ({ values, positionals }, { client, out }) => {
  if (!values.detach) throw usage('ctnet runs containers detached; pass -d (or --detach)');
  if (!values.name) throw usage(`"ctmgr ${SPEC.path}" needs --name`);
  const request: RunContainerRequest = {
    name: values.name ?? '',
    network: values.network ?? '',
    node: values.node ?? '',
    ip: values.ip ?? '',
    mac: values['mac-address'] ?? '',
    aliases: values['network-alias'] ?? [],
    cmd: positionals,
    env: parseEnv(values.env ?? []),
    hostname: values.hostname ?? '',
    dns: values.dns ?? [],
    dnsSearch: values['dns-search'] ?? [],
    attachPid: 0,
    attachNetns: '',
    cni: undefined,
    publish: values.publish ?? [],
    publishAll: values['publish-all'] ?? false,
    expose: values.expose ?? [],
    links: values.link ?? [],
  };
  // The manager's own checks, run before the call. Without --node the manager picks the
  // node; the container name stands in for it so the network, alias and MAC checks still run.
  const container = parseContainerRequest(request);
  // --network none | host | container:NAME need no endpoint
  const how = parseNetworkMode(request.network);
  if (how.mode === 'network') parseEndpointRequest({ ...request, network: how.network!, node: request.node || container.name });
  const detail = await client.runContainer(request);
  out.write(`${requireContainer(detail.container).id}\n`);
  return 0;
});

/**
 * `-e KEY=VALUE`, a later key winning as in Docker. Unlike labels the value is kept
 * verbatim (spaces and all); the key is checked by parseContainerRequest.
 */
export function parseEnv(pairs: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalidArgument(`--env "${pair}" is not of the form KEY=VALUE`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}
