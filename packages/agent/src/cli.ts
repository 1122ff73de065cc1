import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import { AGENT_SETTINGS, CtnetError, ErrorCode, createLogger, formatDiagnosis, invalidArgument, parseAgentConfig, parseIPv4, parseKeyValues, parseSettingsFile, withSettings } from '@ctnet/core';
import { clientCredentials, clientOptions, fromServiceError, ManagerServiceClient, RunContainerRequest, type ContainerDetail } from '@ctnet/proto';
import { createExecaRunner } from './netlink/runner.js';
import { createSandboxRuntime } from './sandbox/runtime.js';

type Env = Readonly<Record<string, string | undefined>>;
export interface AgentIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly onShutdown: (handler: () => void) => void;
}

export const USAGE = `Usage: ctagent COMMAND [flags]

Commands:
  run                     run the agent on this host (flags below)
  ps                      list the sandboxes on this host
  exec NAME -- CMD ARGS…  run a command inside a local sandbox (exit code and output passed through)
  attach --pid PID --network NET --name NAME [--ip IP]
                          plug a running process's network namespace into a network (pipework-style)
  detach --name NAME      undo attach: its interfaces go, the process keeps running
  diag [--format json]    what this host should have against what its kernel has, per network
                          (devices, FDB, neighbours, nftables, sandboxes, the last run), from
                          the running agent (its --data-dir's control.sock)
  docker-config [--daemon-json /etc/docker/daemon.json] [--docker-dns IP] [--force]
                          write the one line of Docker daemon configuration ctnet needs
                          ("dns": [the agent's Docker resolver address]); restart dockerd after

run flags (environment variable in brackets):
  --manager ADDR[,ADDR…]      managers to stream from, tried in turn [CTNET_MANAGER]
  --advertise-addr IP         this host's underlay (VTEP) address [CTNET_ADVERTISE_ADDR]
  --node-name NAME            default: the hostname [CTNET_NODE_NAME]
  --data-dir DIR              default /var/lib/ctnet/agent [CTNET_DATA_DIR]
  --http HOST:PORT            /metrics and /healthz, default 127.0.0.1:4702 [CTNET_HTTP]
  --resync-interval DURATION  periodic full reconcile, default 10s [CTNET_RESYNC_INTERVAL]
  --label k=v                 node label, repeatable [CTNET_LABELS, comma list]
  --dns-ttl SECONDS           TTL of embedded DNS answers, default 5 [CTNET_DNS_TTL]
  --cni-socket PATH           where the CNI plugin (packages/cni/dist/ctnet) reaches this agent,
                              default /run/ctnet/cni.sock; "none" turns it off [CTNET_CNI_SOCKET].
                              Root only (0600 in a 0700 directory); a conflist names another
                              path with "agentSocket"
  --docker-plugin-dir DIR     serves Docker's network and IPAM plugin "ctnet" as DIR/ctnet.sock,
                              default /run/docker/plugins (where dockerd looks); "none" turns
                              it off [CTNET_DOCKER_PLUGIN_DIR]. dockerd is reached through
                              DOCKER_HOST (default unix:///var/run/docker.sock)
  --docker-dns IP             the resolver address for Docker's containers, default
                              169.254.53.53: put on lo, named in daemon.json as "dns": [IP]
                              [CTNET_DOCKER_DNS]
  --join-token TOKEN          joins the cluster (first run, or after "ctmgr node rm"); print one
                              on a manager with "ctmgr join-token worker" [CTNET_JOIN_TOKEN].
                              The node certificate and key are kept in DATA-DIR/tls (0600):
                              restarts need no token
  --config FILE               settings as KEY=VALUE lines with the names in brackets (what
                              /etc/ctnet/ctagent.env holds); the environment overrides it,
                              flags override both; an unknown key is refused
  (CTNET_NETNS_PREFIX sets the prefix of sandbox namespace names, default "ctns-")
`;

const list = (text: string | undefined): string[] =>
  (text ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');

const runOptions = {
  manager: { type: 'string' },
  'advertise-addr': { type: 'string' },
  'node-name': { type: 'string' },
  'data-dir': { type: 'string' },
  http: { type: 'string' },
  'resync-interval': { type: 'string' },
  label: { type: 'string', multiple: true },
  'dns-ttl': { type: 'string' },
  'cni-socket': { type: 'string' },
  'docker-plugin-dir': { type: 'string' },
  'docker-dns': { type: 'string' },
  'join-token': { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/**
 * Where the agent was installed (deploy/install.sh), its settings are in this file; the verbs
 * that talk to the local agent or its sandboxes (ps, exec, attach, detach, diag) read the same
 * data directory and namespace prefix from it, unless the environment sets them.
 */
export const INSTALLED_SETTINGS = '/etc/ctnet/ctagent.env';

async function installedSettings(env: Env, path = INSTALLED_SETTINGS): Promise<Env> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  return text === undefined ? env : withSettings(env, parseSettingsFile(text, AGENT_SETTINGS, path));
}

export async function runAgentCli(argv: readonly string[], env: Env, io: AgentIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await run(rest, env, io);
      case 'ps':
        return await ps(rest, await installedSettings(env), io);
      case 'docker-config':
        return await dockerConfig(rest, env, io);
      case 'exec':
        return await exec(rest, await installedSettings(env), io);
      case 'diag':
        return await diag(rest, await installedSettings(env), io);
      case 'attach':
        return await attach(rest, await installedSettings(env), io);
      case 'detach':
        return await detach(rest, await installedSettings(env), io);
      case undefined:
      case '-h':
      case '--help':
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      default:
        io.err(`ctagent: unknown command "${command}"; run "ctagent --help"\n`);
        return 2;
    }
  } catch (err) {
    const message = err instanceof CtnetError || err instanceof Error ? err.message : String(err);
    io.err(`ctagent: ${message.split('\n')[0]}\n`);
    return err instanceof TypeError && 'code' in err ? 2 : 1;
  }
}

async function run(argv: readonly string[], env: Env, io: AgentIo): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: runOptions, strict: true, allowPositionals: false });
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (values.config !== undefined) {
    const text = await readFile(values.config, 'utf8').catch((err: Error) => {
      throw invalidArgument(`cannot read --config ${values.config}: ${err.message}`);
    });
    env = withSettings(env, parseSettingsFile(text, AGENT_SETTINGS, values.config));
  }
  const config = parseAgentConfig({
    manager: values.manager ?? env.CTNET_MANAGER,
    advertiseAddr: values['advertise-addr'] ?? env.CTNET_ADVERTISE_ADDR,
    nodeName: values['node-name'] ?? env.CTNET_NODE_NAME,
    dataDir: values['data-dir'] ?? env.CTNET_DATA_DIR,
    http: values.http ?? env.CTNET_HTTP,
    resyncInterval: values['resync-interval'] ?? env.CTNET_RESYNC_INTERVAL,
    netnsPrefix: env.CTNET_NETNS_PREFIX,
    labels: parseKeyValues(values.label ?? list(env.CTNET_LABELS), '--label'),
    dnsTtl: values['dns-ttl'] ?? env.CTNET_DNS_TTL,
    cniSocket: values['cni-socket'] ?? env.CTNET_CNI_SOCKET,
    dockerPluginDir: values['docker-plugin-dir'] ?? env.CTNET_DOCKER_PLUGIN_DIR,
    dockerHost: env.DOCKER_HOST,
    dockerDns: values['docker-dns'] ?? env.CTNET_DOCKER_DNS,
    defaultNodeName: hostname(),
  });
  // Loaded for `run` only: the other verbs start faster without the agent's machinery.
  const { startAgent } = await import('./agent.js');
  const agent = await startAgent(config, { runner: createExecaRunner(), log: createLogger(io.err, 'ctagent'), joinToken: values['join-token'] ?? env.CTNET_JOIN_TOKEN });
  await new Promise<void>((resolve) => io.onShutdown(resolve));
  // Stopping the agent leaves the data plane as it is: a restarted agent adopts it.
  await agent.stop();
  return 0;
}

const dataDirOf = (argv: readonly string[], env: Env) =>
  parseArgs({ args: [...argv], options: { 'data-dir': { type: 'string' } }, strict: false, allowPositionals: true }).values['data-dir'] ??
  env.CTNET_DATA_DIR ??
  '/var/lib/ctnet/agent';

async function ps(argv: readonly string[], env: Env, io: AgentIo): Promise<number> {
  const rt = createSandboxRuntime({ runner: createExecaRunner(), dataDir: String(dataDirOf(argv, env)), netnsPrefix: env.CTNET_NETNS_PREFIX ?? 'ctns-' });
  const rows = [['NAME', 'NETNS', 'PID', 'STATUS', 'ADDRESSES']];
  for (const r of await rt.records()) {
    rows.push([r.name, r.netns || '(host)', String(r.pid), rt.running(r) ? (r.attached ? 'attached' : 'running') : 'exited', r.interfaces.map((i) => `${i.ifname}=${i.cidr}`).join(',')]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) io.out(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('')}\n`);
  return 0;
}

async function exec(argv: readonly string[], env: Env, io: AgentIo): Promise<number> {
  const dash = argv.indexOf('--');
  const head = dash < 0 ? argv : argv.slice(0, dash);
  const cmd = dash < 0 ? [] : argv.slice(dash + 1);
  const name = head.filter((a) => !a.startsWith('--data-dir'))[0];
  if (!name || cmd.length === 0) {
    io.err('ctagent: usage: ctagent exec NAME -- CMD [ARGS…]\n');
    return 2;
  }
  const rt = createSandboxRuntime({ runner: createExecaRunner(), dataDir: String(dataDirOf(head, env)), netnsPrefix: env.CTNET_NETNS_PREFIX ?? 'ctns-' });
  const record = (await rt.records()).find((r) => r.name === name);
  if (!record) {
    io.err(`ctagent: no sandbox named ${name} on this host; see "ctagent ps"\n`);
    return 1;
  }
  // Join the container's UTS namespace too (its hostname), when its process is still there.
  const uts = rt.running(record) && !record.attached ? ['nsenter', `--target=${record.pid}`, '--uts', '--'] : [];
  const full = record.netns === '' ? cmd : ['ip', 'netns', 'exec', record.netns, ...uts, ...cmd];
  const child = spawn(full[0]!, full.slice(1), { stdio: 'inherit' });
  return new Promise((resolve) => {
    child.once('error', (err) => {
      io.err(`ctagent: ${err.message}\n`);
      resolve(126);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

interface AgentIdentity {
  nodeName: string;
  managers: string[];
}

async function identity(env: Env, dataDir: string): Promise<AgentIdentity> {
  try {
    return JSON.parse(await readFile(join(dataDir, 'agent.json'), 'utf8')) as AgentIdentity;
  } catch {
    throw new CtnetError(ErrorCode.FailedPrecondition, `no agent has run with data dir ${dataDir}; start "ctagent run" on this host first (or pass --data-dir)`);
  }
}

/** A call as this node (its certificate in DATA-DIR/tls): what attach and detach may do. */
async function managerCall<T>(addr: string, dataDir: string, call: (c: ManagerServiceClient, cb: (e: ServiceError | null, r: T) => void) => void): Promise<T> {
  const [{ readCredential }, { tlsDir }] = await Promise.all([import('@ctnet/pki'), import('./tls.js')]);
  const cred = await readCredential(tlsDir(dataDir), 'this host has not joined the cluster: start "ctagent run --join-token TOKEN" first (as root)');
  const client = new ManagerServiceClient(addr, clientCredentials(cred), clientOptions());
  return new Promise<T>((resolve, reject) =>
    call(client, (e, r) => {
      client.close();
      if (e) reject(fromServiceError(e));
      else resolve(r);
    }),
  ).finally(() => client.close());
}

async function attach(argv: readonly string[], env: Env, io: AgentIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: { pid: { type: 'string' }, network: { type: 'string' }, name: { type: 'string' }, ip: { type: 'string' }, 'data-dir': { type: 'string' } },
    strict: true,
    allowPositionals: false,
  });
  const pid = Number(values.pid);
  if (!values.pid || !Number.isInteger(pid) || pid <= 0) throw invalidArgument('attach needs --pid PID (a process on this host)');
  if (!values.network || !values.name) throw invalidArgument('attach needs --network NET and --name NAME');
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (cmdline === undefined) throw new CtnetError(ErrorCode.NotFound, `no process with PID ${pid} on this host; check it with "ps -p ${pid}"`);
  const dataDir = String(values['data-dir'] ?? env.CTNET_DATA_DIR ?? '/var/lib/ctnet/agent');
  const me = await identity(env, dataDir);
  const cmd = cmdline.split('\0').filter(Boolean);
  const res = await managerCall<ContainerDetail>(me.managers[0]!, dataDir, (c, cb) =>
    c.runContainer(
      RunContainerRequest.fromPartial({ name: values.name, network: values.network, node: me.nodeName, ip: values.ip ?? '', cmd: cmd.length ? cmd : [`pid ${pid}`], attachPid: pid }),
      cb,
    ),
  );
  io.out(`${res.endpoints[0]?.ip ?? ''}\n`);
  return 0;
}

async function detach(argv: readonly string[], env: Env, io: AgentIo): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: { name: { type: 'string' }, 'data-dir': { type: 'string' } }, strict: true, allowPositionals: false });
  if (!values.name) throw invalidArgument('detach needs --name NAME');
  const me = await identity(env, String(values['data-dir'] ?? env.CTNET_DATA_DIR ?? '/var/lib/ctnet/agent'));
  const rt = createSandboxRuntime({ runner: createExecaRunner(), dataDir: String(values['data-dir'] ?? env.CTNET_DATA_DIR ?? '/var/lib/ctnet/agent'), netnsPrefix: env.CTNET_NETNS_PREFIX ?? 'ctns-' });
  const record = (await rt.records()).find((r) => r.name === values.name);
  if (record && !record.attached) throw new CtnetError(ErrorCode.FailedPrecondition, `${values.name} was not attached; remove it with "ctmgr rm -f ${values.name}"`);
  await managerCall(me.managers[0]!, String(values['data-dir'] ?? env.CTNET_DATA_DIR ?? '/var/lib/ctnet/agent'), (c, cb) => c.removeContainer({ name: values.name! }, cb));
  io.out(`${values.name}\n`);
  return 0;
}

async function dockerConfig(argv: readonly string[], env: Env, io: AgentIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: { 'daemon-json': { type: 'string' }, 'docker-dns': { type: 'string' }, force: { type: 'boolean' } },
    strict: true,
    allowPositionals: false,
  });
  const path = values['daemon-json'] ?? '/etc/docker/daemon.json';
  const dns = (values['docker-dns'] ?? env.CTNET_DOCKER_DNS ?? '').trim() || '169.254.53.53';
  parseIPv4(dns, '--docker-dns');
  const { writeDaemonDns } = await import('./docker/daemon-config.js');
  const changed = await writeDaemonDns(path, dns, values.force === true);
  io.out(changed ? `${path}: "dns": ["${dns}"] written; restart dockerd to apply it\n` : `${path}: already has "dns": ["${dns}"]\n`);
  return 0;
}

/** `ctagent diag`: asks the running agent (its control socket) and prints the diagnosis. */
async function diag(argv: readonly string[], env: Env, io: AgentIo): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: { format: { type: 'string' }, 'data-dir': { type: 'string' } }, strict: true, allowPositionals: false });
  const format = values.format ?? 'text';
  if (format !== 'text' && format !== 'json') throw invalidArgument(`--format ${format} is not known; use text or json`);
  const [{ askControl }, { controlSocketPath }] = await Promise.all([import('./diag-client.js'), import('./diag.js')]);
  const report = await askControl(controlSocketPath(String(dataDirOf(argv, env))));
  io.out(format === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatDiagnosis(report));
  return 0;
}
