/**
 * How every benchmark runs: parses `--smoke` (tiny sizes, a few seconds: proves the benchmark
 * still runs; its figures mean nothing), and stops everything it started however it ends —
 * success, a thrown error, SIGINT/SIGTERM/SIGHUP:
 *
 *   runBench(async (bench) => {
 *     const etcd = await startTestEtcd();
 *     bench.defer(() => etcd.stop());            // undo steps run newest first
 *     ...
 *   });
 *
 * Two nets under the undo steps: a step registered after a signal (a start that was in
 * flight) runs at once; and any child process still running at the end (one the benchmark
 * started but whose undo step never existed) is stopped — SIGTERM, then SIGKILL — and named,
 * which fails the run. Only direct children in this process's own group are touched: a lab's
 * detached watchdog is left to do its job.
 *
 * Exit status: 0 when the benchmark printed its results, 1 when it failed, 77 when it cannot
 * run here (`throw new BenchSkipped(reason)`), 128+n on signal n. Benchmarks never assert
 * speed: a slow run is still a run.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { constants } from 'node:os';

export const SKIP_STATUS = 77;

export interface Bench {
  /** `--smoke`: tiny sizes, a few seconds; the table is still printed. */
  readonly smoke: boolean;
  /** The command line after the script, `--smoke` included. */
  readonly args: readonly string[];
  /** The value after `--NAME` on the command line, if any. */
  arg(name: string): string | undefined;
  /** An undo step, run (newest first) when the benchmark ends; at once if it is ending already. */
  defer(step: () => unknown): void;
}

/** Thrown when the benchmark cannot run on this machine; the smoke run reports it as skipped. */
export class BenchSkipped extends Error {
  override readonly name = 'BenchSkipped';
}

const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** After a signal, how long a step in flight gets to finish (and register its undo). */
const IN_FLIGHT_MS = 5_000;
/** How long all undo steps together may take before the process leaves anyway. */
const UNDO_LIMIT_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** "pid state ppid pgrp" of a process, or undefined once it is gone. */
function stat(pid: number | 'self'): { state: string; ppid: number; pgrp: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid pgrp ...": comm may hold spaces or ')', so split after the last ')'.
    const [state, ppid, pgrp] = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid), pgrp: Number(pgrp) };
  } catch {
    return undefined;
  }
}

/** This process's live children in its own process group, with their command lines. */
function children(): { pid: number; cmd: string }[] {
  const pgrp = stat('self')?.pgrp;
  const found: { pid: number; cmd: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = stat(Number(entry));
    if (!s || s.ppid !== process.pid || s.pgrp !== pgrp || s.state === 'Z') continue;
    let cmd = '';
    try {
      // tsx's compiler service (esbuild) is this process's machinery, not the benchmark's; it ends with it.
      if (/\/node_modules\/@esbuild\//.test(readlinkSync(`/proc/${entry}/exe`))) continue;
      cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue; // gone meanwhile
    }
    found.push({ pid: Number(entry), cmd });
  }
  return found;
}

/** Stops the children still running (SIGTERM, SIGKILL after 5 s); returns what it found. */
async function stopChildren(): Promise<string[]> {
  const left = children();
  const signal = (s: NodeJS.Signals) => {
    for (const c of left) {
      try {
        process.kill(c.pid, s);
      } catch {
        // gone
      }
    }
  };
  const alive = () => left.some((c) => { const s = stat(c.pid); return s !== undefined && s.state !== 'Z'; });
  signal('SIGTERM');
  for (let i = 0; i < 50 && alive(); i++) await sleep(100);
  if (alive()) signal('SIGKILL');
  for (let i = 0; i < 20 && alive(); i++) await sleep(100);
  return left.map((c) => `${c.pid} ${c.cmd}`);
}

export function runBench(main: (bench: Bench) => Promise<void>): void {
  const args = process.argv.slice(2);
  const steps: (() => unknown)[] = [];
  const late: Promise<void>[] = [];
  const problems: string[] = [];
  let stopping = false;

  const runStep = async (step: () => unknown) => {
    try {
      await step();
    } catch (err) {
      problems.push(`cleanup: ${message(err)}`);
    }
  };
  /** Every undo step once, newest first, then the children nobody stopped. */
  const finish = async (status: number): Promise<never> => {
    stopping = true;
    while (steps.length) await runStep(steps.pop()!);
    await Promise.all(late);
    const left = await stopChildren();
    if (left.length) problems.push(`still running at the end, now stopped (an undo step is missing): ${left.join('; ')}`);
    for (const p of problems) console.error(`benchmark: ${p}`);
    // gRPC channels and timers may linger: the benchmark is over once everything is undone.
    process.exit(problems.length && status === 0 ? 1 : status);
  };

  const bench: Bench = {
    smoke: args.includes('--smoke'),
    args,
    arg: (name) => {
      const i = args.indexOf(`--${name}`);
      return i >= 0 ? args[i + 1] : undefined;
    },
    defer: (step) => {
      if (stopping) late.push(runStep(step));
      else steps.push(step);
    },
  };

  let done: Promise<number> | undefined;
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    const status = 128 + (constants.signals[signal] ?? 1);
    if (signalled) process.exit(status); // a second signal: no more waiting
    signalled = true;
    process.stderr.write(`benchmark: ${signal}, stopping what it started\n`);
    setTimeout(() => process.exit(status), UNDO_LIMIT_MS).unref();
    stopping = true;
    void (async () => {
      while (steps.length) await runStep(steps.pop()!);
      // A start in flight (an etcd, a lab) registers its undo step when it returns: that step runs at once.
      await Promise.race([done ?? Promise.resolve(), sleep(IN_FLIGHT_MS)]);
      await finish(status);
    })();
  };
  for (const s of SIGNALS) process.on(s, onSignal);

  done = (async (): Promise<number> => {
    try {
      await main(bench);
      return 0;
    } catch (err) {
      if (err instanceof BenchSkipped) {
        console.log(`skipped: ${err.message}`);
        return SKIP_STATUS;
      }
      if (!stopping) console.error(err); // after a signal, errors are the teardown's echo
      return 1;
    }
  })();

  void done.then((status) => {
    if (!signalled) void finish(status);
  });
}
