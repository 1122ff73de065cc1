import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { CtnetError, createLogger, parseAgentConfig, parseKeyValues } from '@ctnet/core';
import { startAgent } from './agent.js';
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

run flags (environment variable in brackets):
  --manager ADDR[,ADDR…]      managers to stream from, tried in turn [CTNET_MANAGER]
  --advertise-addr IP         this host's underlay (VTEP) address [CTNET_ADVERTISE_ADDR]
  --node-name NAME            default: the hostname [CTNET_NODE_NAME]
  --data-dir DIR              default /var/lib/ctnet/agent [CTNET_DATA_DIR]
  --http HOST:PORT            /metrics and /healthz, default 127.0.0.1:4702 [CTNET_HTTP]
  --resync-interval DURATION  periodic full reconcile, default 10s [CTNET_RESYNC_INTERVAL]
  --label k=v                 node label, repeatable
  (CTNET_NETNS_PREFIX sets the prefix of sandbox namespace names, default "ctns-")
`;

const runOptions = {
  manager: { type: 'string' },
  'advertise-addr': { type: 'string' },
  'node-name': { type: 'string' },
  'data-dir': { type: 'string' },
  http: { type: 'string' },
  'resync-interval': { type: 'string' },
  label: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runAgentCli(argv: readonly string[], env: Env, io: AgentIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await run(rest, env, io);
      case 'ps':
        return await ps(rest, env, io);
      case 'exec':
        return await exec(rest, env, io);
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
  const config = parseAgentConfig({
    manager: values.manager ?? env.CTNET_MANAGER,
    advertiseAddr: values['advertise-addr'] ?? env.CTNET_ADVERTISE_ADDR,
    nodeName: values['node-name'] ?? env.CTNET_NODE_NAME,
    dataDir: values['data-dir'] ?? env.CTNET_DATA_DIR,
    http: values.http ?? env.CTNET_HTTP,
    resyncInterval: values['resync-interval'] ?? env.CTNET_RESYNC_INTERVAL,
    netnsPrefix: env.CTNET_NETNS_PREFIX,
    labels: parseKeyValues(values.label ?? [], '--label'),
    defaultNodeName: hostname(),
  });
  const agent = await startAgent(config, { runner: createExecaRunner(), log: createLogger(io.err, 'ctagent') });
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
    rows.push([r.name, r.netns, String(r.pid), rt.running(r) ? 'running' : 'exited', r.interfaces.map((i) => `${i.ifname}=${i.cidr}`).join(',')]);
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
  const uts = rt.running(record) ? ['nsenter', `--target=${record.pid}`, '--uts', '--'] : [];
  const child = spawn('ip', ['netns', 'exec', record.netns, ...uts, ...cmd], { stdio: 'inherit' });
  return new Promise((resolve) => {
    child.once('error', (err) => {
      io.err(`ctagent: ${err.message}\n`);
      resolve(126);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
