import { CtnetError, ErrorCode } from '@ctnet/core';
import type { Command, ManagerApi, Writer } from './api.js';
import { errorLine, exitCodeFor, UsageError } from './errors.js';
import { DEFAULT_TLS_DIR } from './defaults.js';
import { VERSION } from './version.js';

export const DEFAULT_MANAGER = '127.0.0.1:4700';

export type Env = Readonly<Record<string, string | undefined>>;

/** What `ctmgr serve` is given besides argv and env (the manager's ServeIo). */
export interface ServeIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly onShutdown: (handler: () => void) => void;
}

/** `ctmgr serve`: the manager package's entry point; resolves with the exit code when it stops. */
export type ServeMain = (argv: readonly string[], env: Env, io: ServeIo) => Promise<number>;

export interface CliIo {
  readonly out: Writer;
  readonly err: Writer;
  /** Registers what stops `ctmgr serve` (main.ts: SIGINT and SIGTERM). Default: nothing does. */
  readonly onShutdown?: (handler: () => void) => void;
  /** Builds the client for an address and admin credential dir; the default talks gRPC. Tests pass a fake. */
  readonly connect?: (address: string, tlsDir: string) => ManagerApi & { close?(): void };
  /** Runs `ctmgr serve`; the default loads @ctnet/manager on first use. */
  readonly serve?: ServeMain;
}

/**
 * Runs one ctmgr invocation and returns its exit code: 0 on success, 1 when the operation
 * failed, 2 when the command line was wrong. Failures print one "ctmgr: …" line on stderr.
 */
export async function runCli(argv: readonly string[], env: Env, io: CliIo): Promise<number> {
  try {
    return await dispatch(argv, env, io);
  } catch (err) {
    io.err.write(errorLine(err));
    return exitCodeFor(err);
  }
}

interface Globals {
  manager?: string;
  tlsDir?: string;
  help: boolean;
  version: boolean;
  rest: readonly string[];
}

async function dispatch(argv: readonly string[], env: Env, io: CliIo): Promise<number> {
  const globals = parseGlobals(argv);
  if (globals.version) {
    io.out.write(`ctmgr ${VERSION}\n`);
    return 0;
  }
  const [word, ...rest] = globals.rest;
  // The commands (and the gRPC and protobuf code they stand on) are loaded when one is
  // needed: --version, and `serve` (which loads the manager instead), start without them.
  if (globals.help || word === undefined || word === 'help') {
    io.out.write(topHelp(await loadCommands()));
    return 0;
  }
  if (word === 'serve') {
    const serve = io.serve ?? (await loadServe());
    return serve(rest, env, {
      stdout: (text) => io.out.write(text),
      stderr: (text) => io.err.write(text),
      onShutdown: io.onShutdown ?? (() => {}),
    });
  }

  // A single-word command (`ctmgr ps`) takes the rest as its arguments; a noun
  // (`ctmgr network`) takes a verb first.
  const address = globals.manager ?? (env.CTNET_MANAGER?.trim() || DEFAULT_MANAGER);
  const tlsDir = globals.tlsDir ?? (env.CTNET_TLS_DIR?.trim() || DEFAULT_TLS_DIR);
  const target = { address, tlsDir };
  const COMMANDS = await loadCommands();
  const single = COMMANDS.find((c) => c.path === word);
  if (single) return runCommand(single, rest, target, io);
  const verbs = COMMANDS.filter((c) => c.path.startsWith(`${word} `));
  if (verbs.length === 0) throw new UsageError(`unknown command "${word}"`, 'ctmgr');
  const [verb, ...args] = rest;
  if (verb === undefined || verb === '-h' || verb === '--help') {
    io.out.write(nounHelp(word, verbs));
    return 0;
  }
  const command = verbs.find((c) => c.path === `${word} ${verb}` || (c.aliases ?? []).includes(verb));
  if (command === undefined) {
    const problem = verb.startsWith('-')
      ? `flags go after the command, as in "ctmgr ${word} ls ${verb}"`
      : `unknown command "ctmgr ${word} ${verb}"`;
    throw new UsageError(problem, `ctmgr ${word}`);
  }
  return runCommand(command, args, target, io);
}

/** Builds the client for one command and closes it afterwards, also when the command fails. */
async function runCommand(command: Command, args: readonly string[], target: { address: string; tlsDir: string }, io: CliIo): Promise<number> {
  // gRPC is loaded on first use: --version, --help and usage errors start without it.
  const client = io.connect
    ? io.connect(target.address, target.tlsDir)
    : new (await import('./grpc-api.js')).GrpcManagerApi(target.address, undefined, target.tlsDir);
  try {
    return await command.run(args, { client, out: io.out, err: io.err });
  } finally {
    client.close?.();
  }
}

/** Global flags come before the command, as with `docker -H`. */
function parseGlobals(argv: readonly string[]): Globals {
  const g: Globals = { help: false, version: false, rest: [] };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-')) break;
    if (arg === '-h' || arg === '--help') g.help = true;
    else if (arg === '--version') g.version = true;
    else if (arg === '--manager' || arg.startsWith('--manager=')) {
      const value = arg === '--manager' ? argv[++i] : arg.slice('--manager='.length);
      if (value === undefined || value === '') throw new UsageError('--manager needs an address such as 127.0.0.1:4700', 'ctmgr');
      g.manager = value;
    } else if (arg === '--tls-dir' || arg.startsWith('--tls-dir=')) {
      const value = arg === '--tls-dir' ? argv[++i] : arg.slice('--tls-dir='.length);
      if (value === undefined || value === '') throw new UsageError('--tls-dir needs a directory holding ca.pem, cert.pem and key.pem', 'ctmgr');
      g.tlsDir = value;
    } else throw new UsageError(`unknown global flag ${arg.split('=')[0]}`, 'ctmgr');
  }
  g.rest = argv.slice(i);
  return g;
}

/**
 * Loaded on first use: the manager pulls in etcd, metrics and the gRPC server, which the
 * client verbs do not need, so they start faster without it.
 */
async function loadServe(): Promise<ServeMain> {
  try {
    return (await import('@ctnet/manager')).serveMain;
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).split('\n', 1)[0] ?? '';
    throw new CtnetError(ErrorCode.Internal, `cannot load @ctnet/manager (${reason}); build ctnet with "npm run build"`, {
      cause: err,
    });
  }
}

function listing(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `  ${left.padEnd(width)}   ${right}`);
}

const loadCommands = async (): Promise<readonly Command[]> => (await import('./commands/index.js')).COMMANDS;

export function topHelp(COMMANDS: readonly Command[]): string {
  return [
    'Usage:  ctmgr [--manager ADDR] [--tls-dir DIR] COMMAND [OPTIONS] [ARGS]',
    '',
    'Manage ctnet overlay networks: run the manager and containers, create networks, watch nodes.',
    '',
    'Commands:',
    ...listing([
      ['serve', 'Run the manager (see "ctmgr serve --help")'],
      ...COMMANDS.filter((c) => !c.path.includes(' ')).map((c) => [c.path, c.summary] as const),
    ]),
    '',
    'Management commands:',
    ...listing(COMMANDS.filter((c) => c.path.includes(' ')).map((c) => [c.path, c.summary] as const)),
    '',
    'Global flags (before the command):',
    ...listing([
      ['--manager ADDR', `Manager gRPC address (env CTNET_MANAGER, default ${DEFAULT_MANAGER})`],
      ['--tls-dir DIR', `Admin credential: ca.pem, cert.pem, key.pem (env CTNET_TLS_DIR, default ${DEFAULT_TLS_DIR})`],
      ['-h, --help', 'Show this help'],
      ['--version', 'Print the version'],
    ]),
    '',
    'Run "ctmgr COMMAND --help" for the flags of a command.',
    '',
  ].join('\n');
}

function nounHelp(noun: string, verbs: readonly Command[]): string {
  return [
    `Usage:  ctmgr [--manager ADDR] ${noun} COMMAND`,
    '',
    'Commands:',
    ...listing(verbs.map((c) => [c.path, c.summary] as const)),
    '',
    `Run "ctmgr ${noun} COMMAND --help" for the flags of a command.`,
    '',
  ].join('\n');
}
