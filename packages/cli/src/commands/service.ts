import { invalidArgument, parseReplicas, parseServiceRequest } from '@ctnet/core';
import type { CreateServiceRequest, ServiceDetail } from '@ctnet/proto';
import type { CommandContext } from '../api.js';
import { defineCommand, formatOption, parseFormat, type OptionSpecs, type VerbSpec } from '../args.js';
import { errorLine, UsageError } from '../errors.js';
import { commandLine, formatFields, formatJson, formatTable, requireContainer, shortId } from '../output.js';
import { parseEnv } from './container-run.js';

/**
 * `ctmgr service …`, as `docker service …`. create and scale wait, showing progress, until
 * every task runs and every ready host has applied the change (the agents' acknowledgements);
 * --detach returns at once.
 */
const waitOptions = {
  detach: { type: 'boolean', short: 'd', help: 'Return at once instead of waiting for the service to converge' },
  timeout: { type: 'string', value: 'SECONDS', help: 'Give up waiting after this long (default 60); the service stays' },
} as const satisfies OptionSpecs;

const CREATE = {
  path: 'service create',
  summary: 'Create a service: N tasks of one command spread over the ready nodes, found by name on its networks.',
  operands: '[--] COMMAND [ARG...]',
  min: 1,
  max: Infinity,
  flagsEndAtOperand: true,
  options: {
    name: { type: 'string', value: 'NAME', help: 'Service name, its DNS name on its networks (required)' },
    network: { type: 'string', multiple: true, value: 'NET', help: 'Overlay network to join (required; repeat for several)' },
    replicas: { type: 'string', value: 'N', help: 'Number of tasks (default 1)' },
    'endpoint-mode': { type: 'string', value: 'MODE', help: 'vip (a virtual IP per network, default) or dnsrr (every task\'s address)' },
    constraint: { type: 'string', multiple: true, value: 'EXPR', help: 'Placement: node.name==X or node.labels.K==V (!= too); repeatable' },
    env: { type: 'string', short: 'e', multiple: true, value: 'KEY=VALUE', help: 'Set an environment variable' },
    publish: {
      type: 'string',
      short: 'p',
      multiple: true,
      value: 'SPEC',
      help: 'Publish a port: published=P,target=T[,mode=ingress|host][,protocol=tcp|udp] or P:T[/udp]',
    },
    ...waitOptions,
  },
} as const satisfies VerbSpec<OptionSpecs>;

export const serviceCreate = defineCommand(CREATE, async ({ values, positionals }, ctx) => {
  if (!values.name) throw new UsageError('"ctmgr service create" needs --name', `ctmgr ${CREATE.path}`);
  if (!values.network?.length) throw new UsageError('"ctmgr service create" needs --network', `ctmgr ${CREATE.path}`);
  const req: CreateServiceRequest = {
    name: values.name,
    networks: values.network,
    replicas: parseReplicas(values.replicas ?? '1'),
    endpointMode: values['endpoint-mode'] ?? 'vip',
    constraints: values.constraint ?? [],
    cmd: positionals,
    env: parseEnv(values.env ?? []),
    publish: values.publish ?? [],
  };
  parseServiceRequest(req); // the manager's checks, before the call
  const timeoutMs = parseTimeout(values.timeout);
  const detail = await ctx.client.createService(req);
  ctx.out.write(`${detail.service?.id ?? ''}\n`);
  return values.detach ? 0 : waitForService(ctx, req.name, timeoutMs);
});

const SCALE = {
  path: 'service scale',
  summary: 'Set the number of tasks of one or more services.',
  operands: 'SERVICE=REPLICAS...',
  min: 1,
  max: Infinity,
  options: waitOptions,
} as const satisfies VerbSpec<OptionSpecs>;

export const serviceScale = defineCommand(SCALE, async ({ values, positionals }, ctx) => {
  const wanted = positionals.map((p) => {
    const eq = p.indexOf('=');
    if (eq <= 0) throw invalidArgument(`"${p}" is not of the form SERVICE=REPLICAS, e.g. web=3`);
    return { name: p.slice(0, eq), replicas: parseReplicas(p.slice(eq + 1)) };
  });
  const timeoutMs = parseTimeout(values.timeout);
  for (const w of wanted) {
    await ctx.client.scaleService(w.name, w.replicas);
    ctx.out.write(`${w.name} scaled to ${w.replicas}\n`);
  }
  if (values.detach) return 0;
  for (const w of wanted) if ((await waitForService(ctx, w.name, timeoutMs)) !== 0) return 1;
  return 0;
});

const FORMATS = ['table', 'json'] as const;

export const serviceLs = defineCommand(
  { path: 'service ls', aliases: ['list'], summary: 'List services.', operands: '', min: 0, max: 0, options: { ...formatOption(FORMATS, 'table') } },
  async ({ values }, { client, out }) => {
    const services = await client.listServices();
    if (parseFormat(values.format, FORMATS, 'table', 'service ls') === 'json') {
      out.write(formatJson(services.map(serviceView)));
      return 0;
    }
    out.write(
      formatTable(
        ['ID', 'NAME', 'MODE', 'REPLICAS', 'NETWORKS', 'VIPS', 'PORTS', 'COMMAND'],
        services.map((d) => {
          const s = d.service!;
          return [shortId(s.id), s.name, s.endpointMode, `${d.running}/${s.replicas}`, d.vips.map((v) => v.network).join(',') || '-', d.vips.map((v) => v.ip).join(',') || '-', servicePorts(s) || '-', commandLine(s.cmd)];
        }),
      ),
    );
    return 0;
  },
);

export const serviceInspect = defineCommand(
  { path: 'service inspect', summary: 'Show a service in detail.', operands: 'NAME', min: 1, max: 1, options: { ...formatOption(['text', 'json'] as const, 'json') } },
  async ({ values, positionals }, { client, out }) => {
    const d = await client.inspectService(positionals[0]!);
    if (values.format === 'text') {
      const s = d.service!;
      out.write(
        formatFields([
          ['ID', s.id],
          ['Name', s.name],
          ['Mode', s.endpointMode],
          ['Replicas', `${d.running} running / ${s.replicas} wanted`],
          ['Virtual IPs', d.vips.map((v) => `${v.network} ${v.ip}`).join(', ') || '-'],
          ['Ports', servicePorts(s) || '-'],
          ['Constraints', s.constraints.join(', ') || '-'],
          ['Converged', `${d.converged ? 'yes' : 'no'} (hosts ${d.nodesConverged}/${d.nodesReady})`],
          ['Pending', d.pending || '-'],
          ['Command', commandLine(s.cmd)],
        ]),
      );
    } else out.write(formatJson(serviceView(d)));
    return 0;
  },
);

export const servicePs = defineCommand(
  { path: 'service ps', summary: "List a service's tasks, with their node, state and addresses.", operands: 'NAME', min: 1, max: 1, options: { ...formatOption(FORMATS, 'table') } },
  async ({ values, positionals }, { client, out }) => {
    const d = await client.inspectService(positionals[0]!);
    if (parseFormat(values.format, FORMATS, 'table', 'service ps') === 'json') {
      out.write(formatJson(serviceView(d).tasks));
      return 0;
    }
    out.write(formatTable(['ID', 'NAME', 'NODE', 'DESIRED', 'STATE', 'RESTARTS', 'IP'], serviceView(d).tasks.map((t) => [shortId(t.id), t.name, t.node, t.desired, t.state, String(t.restarts), t.ips.join(',') || '-'])));
    if (d.pending) out.write(`${d.pending}\n`);
    return 0;
  },
);

export const serviceRm = defineCommand(
  { path: 'service rm', aliases: ['remove'], summary: 'Remove services; their tasks leave DNS first, then stop.', operands: 'NAME...', min: 1, max: Infinity, options: {} },
  async ({ positionals }, { client, out, err }) => {
    let failed = false;
    for (const name of positionals) {
      try {
        await client.removeService(name);
        out.write(`${name}\n`);
      } catch (e) {
        err.write(errorLine(e));
        failed = true;
      }
    }
    return failed ? 1 : 0;
  },
);

/** As `docker service ls` shows them: *:30080->80/tcp (ingress), or host mode spelled out. */
const servicePorts = (s: NonNullable<ServiceDetail['service']>): string =>
  s.publish.map((p) => `*:${p.published}->${p.target}/${p.protocol}${p.mode === 'host' ? ' (host)' : ''}`).join(', ');

function serviceView(d: ServiceDetail) {
  const s = d.service!;
  return {
    id: s.id,
    name: s.name,
    mode: s.endpointMode,
    replicas: s.replicas,
    running: d.running,
    networks: s.networks,
    vips: d.vips,
    publish: s.publish.map((p) => ({ published: p.published, target: p.target, protocol: p.protocol, mode: p.mode })),
    constraints: s.constraints,
    cmd: s.cmd,
    converged: d.converged,
    hosts: { ready: d.nodesReady, converged: d.nodesConverged },
    pending: d.pending,
    tasks: d.tasks.map((t) => {
      const c = requireContainer(t.container);
      return {
        id: c.id,
        name: c.name,
        slot: c.task?.slot ?? 0,
        node: c.node,
        desired: c.task?.desired ?? '',
        state: c.status?.state ?? 'pending',
        message: c.status?.message ?? '',
        restarts: c.status?.restarts ?? 0,
        ips: t.endpoints.map((e) => e.ip),
      };
    }),
  };
}

const parseTimeout = (text: string | undefined): number => {
  const n = Number(text ?? '60');
  if (!Number.isFinite(n) || n <= 0) throw invalidArgument(`--timeout "${text}" must be a positive number of seconds`);
  return n * 1000;
};

/** Polls the service and shows Docker-like progress until it converged (0) or the timeout (1). */
async function waitForService(ctx: CommandContext, name: string, timeoutMs: number): Promise<number> {
  const tty = (ctx.out as { isTTY?: boolean }).isTTY === true;
  const began = Date.now();
  let last = '';
  for (;;) {
    const d = await ctx.client.inspectService(name);
    const s = d.service!;
    const line = `${s.name}: tasks running ${d.running}/${s.replicas}, hosts converged ${d.nodesConverged}/${d.nodesReady}${d.pending ? ` (${d.pending})` : ''}`;
    if (line !== last) ctx.out.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
    last = line;
    if (d.converged) {
      ctx.out.write(`${tty ? '\n' : ''}${s.name}: converged in ${Date.now() - began} ms\n`);
      return 0;
    }
    if (Date.now() - began > timeoutMs) {
      ctx.err.write(`${tty ? '\n' : ''}ctmgr: service ${s.name} did not converge within ${timeoutMs / 1000} s${d.pending ? `: ${d.pending}` : ''}; it stays, see "ctmgr service ps ${s.name}"\n`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
