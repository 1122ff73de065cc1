/**
 * How one `ip -force -batch -` / `bridge -force -batch -` run is laid out and read back. Pure.
 *
 * Under `-force` iproute2 goes on after a failing line and reports it on stderr as the
 * tool's message followed by "Command failed -:<line>". Two gaps make that not enough:
 *  - Some failures end the process anyway: `ip neigh` calls exit(2) when the kernel rejects
 *    a change, and argument errors (e.g. `master` naming a missing device) exit(255). The
 *    lines after it never run, and nothing says which line it was.
 *  - A successful line prints nothing, so how far the tool got is invisible.
 * So every op's lines are followed by a marker: a line the tool rejects in userspace, before
 * talking to the kernel, without exiting. Each marker's "Command failed" confirms that the
 * op before it was processed; the first op without its marker is where the tool stopped.
 * A marker never reaches the kernel (measured: 10,000 of them add ~5 ms to a 10,000-entry
 * batch), and the messages it prints are dropped here.
 */
import type { RunResult } from './runner.js';

export type Tool = 'ip' | 'bridge';

/** Lines each tool refuses before any netlink request ("dev" argument is required). */
export const MARKER: Record<Tool, string> = {
  ip: 'addr add 127.0.0.1/8',
  bridge: 'fdb add 00:00:00:00:00:00',
};

export interface BatchScript {
  readonly text: string;
  /**
   * For each line (index = line number - 1): the op it belongs to (-1 for the opening
   * marker), and whether it is a marker.
   */
  readonly lines: readonly { readonly op: number; readonly marker: boolean }[];
  readonly opCount: number;
}

/**
 * Lays out ops' rendered lines (`rendered[i]` for op i), each op followed by its marker. An
 * extra marker opens the script: if even that is not reported, the tool never got to the
 * batch (missing namespace, broken install) and no op is to blame.
 */
export function buildScript(tool: Tool, rendered: readonly (readonly string[])[]): BatchScript {
  const text: string[] = [MARKER[tool]];
  const lines: { op: number; marker: boolean }[] = [{ op: -1, marker: true }];
  rendered.forEach((opLines, op) => {
    for (const line of opLines) {
      text.push(line);
      lines.push({ op, marker: false });
    }
    text.push(MARKER[tool]);
    lines.push({ op, marker: true });
  });
  return { text: text.map((l) => `${l}\n`).join(''), lines, opCount: rendered.length };
}

export interface BatchOutcome {
  /** Whether the tool read the script at all (the opening marker was reported). */
  readonly started: boolean;
  /** Ops (by index) the tool reported as failed, with its message lines. */
  readonly failed: ReadonlyMap<number, string>;
  /** How many ops the tool got through (their markers were reported): ops [0, done). */
  readonly done: number;
  /** When it stopped early: what it printed after the last line it reported, and its exit status. */
  readonly stop?: { readonly message: string; readonly exitCode: number };
}

const FAILED_LINE = /^Command failed .*:(\d+)$/;

/** Reads a run's stderr against its script. */
export function readOutcome(script: BatchScript, result: RunResult): BatchOutcome {
  const failed = new Map<number, string>();
  let pending: string[] = []; // message lines since the last "Command failed"
  let started = false;
  let done = 0;
  for (const raw of result.stderr.split('\n')) {
    const line = raw.trimEnd();
    const m = FAILED_LINE.exec(line);
    if (!m) {
      if (line !== '') pending.push(line);
      continue;
    }
    const owner = script.lines[Number(m[1]) - 1];
    if (owner?.marker) {
      started = true;
      // Messages before a marker's report are the marker's own (or a warning from the op's
      // successful lines): not failures.
      done = Math.max(done, owner.op + 1);
    } else if (owner) {
      const message = pending.join('\n') || 'failed without a message';
      const before = failed.get(owner.op);
      // Two-line ops (neigh-del) can fail on both lines, usually with the same message.
      failed.set(owner.op, before === undefined || before === message ? message : `${before}\n${message}`);
    }
    pending = [];
  }
  if (started && done >= script.opCount) return { started, failed, done };
  return { started, failed, done, stop: { message: pending.join('\n'), exitCode: result.exitCode } };
}
