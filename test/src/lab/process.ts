import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { constants } from 'node:os';

/** How a process ended: its exit code, or the signal that killed it. */
export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A long-running process the lab started, its stdout and stderr appended to a log file. */
export interface LabProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  readonly exited: Promise<Exit>;
  running(): boolean;
  /** Sends `signal`; escalates to SIGKILL after `timeoutMs`; resolves once it has exited. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
}

export const STOP_TIMEOUT_MS = 5_000;

/** Spawns argv (no shell) with output appended to logPath; never rejects, even if argv[0] is missing. */
export function spawnLogged(name: string, argv: readonly string[], logPath: string, env: NodeJS.ProcessEnv): LabProcess {
  const fd = openSync(logPath, 'a');
  writeSync(fd, `=== ${new Date().toISOString()} ${argv.join(' ')}\n`);
  let child: ChildProcess;
  try {
    child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd], env });
  } finally {
    closeSync(fd); // the child has its own copy
  }
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    // 'error' without 'exit' when the binary cannot be started.
    child.once('error', (err) => {
      exit ??= { code: 127, signal: null };
      writeLog(logPath, `=== ${name}: ${err.message}\n`);
      resolve(exit);
    });
    child.once('exit', (code, signal) => {
      exit ??= { code, signal };
      resolve(exit);
    });
  });
  const running = (): boolean => exit === undefined && child.pid !== undefined;
  return {
    name,
    pid: child.pid ?? -1,
    logPath,
    exited,
    running,
    async stop(signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS) {
      if (!running()) return exited;
      child.kill(signal);
      const timer = setTimeout(() => running() && child.kill('SIGKILL'), timeoutMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

export interface RunResult {
  /** Exit code; 128 + signal number if killed (124 on timeout, like timeout(1)). */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs argv to completion (no shell), capturing output; never rejects. */
export function run(argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string; signal?: AbortSignal } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => undefined); // a program that exits without reading its input (EPIPE): its exit says what happened
      child.stdin!.end(opts.input);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 30_000);
    const abort = (): void => void child.kill('SIGKILL');
    opts.signal?.addEventListener('abort', abort, { once: true });
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: 127, stdout, stderr: stderr + err.message });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', abort);
      if (timedOut) resolve({ code: 124, stdout, stderr: `${stderr}[timed out after ${opts.timeoutMs ?? 30_000} ms: ${argv.join(' ')}]` });
      else resolve({ code: code ?? 128 + signalNumber(signal), stdout, stderr });
    });
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (constants.signals[signal] ?? 0) : 0;
}

export function readLog(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function writeLog(path: string, text: string): void {
  try {
    const fd = openSync(path, 'a');
    writeSync(fd, text);
    closeSync(fd);
  } catch {
    // the work dir may already be gone
  }
}

/** The last `lines` lines of a log, for error messages. */
export function tail(text: string, lines = 40): string {
  const all = text.trimEnd().split('\n');
  return (all.length > lines ? ['...', ...all.slice(-lines)] : all).join('\n');
}
