import { CtnetError, ErrorCode, invalidArgument, toolFor, type ActualHost, type KernelOp } from '@ctnet/core';
import { buildScript, readOutcome, type Tool } from './batch.js';
import { cleanMessage, kernelError, kernelErrorCode } from './errors.js';
import { parseAddrs, parseFdb, parseLinks, parseNeigh } from './parse.js';
import { renderBridgeOp, renderIpOp } from './render.js';
import type { CommandRunner } from './runner.js';

export interface KernelOptions {
  /** Run in this named network namespace (`ip -n NS`), not the agent's own. */
  readonly netns?: string;
}

export interface ApplyFailure {
  readonly op: KernelOp;
  /** The tool's message for this op (iproute2/kernel text). */
  readonly error: string;
  readonly code: ErrorCode;
}

export interface ApplyResult {
  /** Ops that took effect, deletes of things already gone included. */
  readonly applied: number;
  /** In the order the ops were given. */
  readonly failed: readonly ApplyFailure[];
}

/**
 * Reads links, IPv4 addresses, FDB and IPv4 neighbours, the four dumps in parallel. They are
 * four snapshots, not one: an entry can change between them. That is fine for a reconciler
 * that re-reads on every pass; it is not a consistent view for anything else.
 */
export async function readActual(runner: CommandRunner, opts: KernelOptions = {}): Promise<ActualHost> {
  const ns = netnsArgs(opts.netns);
  const [links, addrs, fdb, neigh] = await Promise.all([
    query(runner, 'ip', [...ns, '-j', '-d', 'link', 'show']),
    query(runner, 'ip', [...ns, '-j', 'addr', 'show']),
    query(runner, 'bridge', [...ns, '-j', 'fdb', 'show']),
    query(runner, 'ip', [...ns, '-j', 'neigh', 'show']),
  ]);
  return { links: parseLinks(links), addrs: parseAddrs(addrs), fdb: parseFdb(fdb), neigh: parseNeigh(neigh) };
}

async function query(runner: CommandRunner, tool: Tool, args: readonly string[]): Promise<string> {
  const result = await runner.run(tool, args);
  if (result.exitCode !== 0) throw kernelError(`${tool} ${args.join(' ')}`, result.stderr);
  return result.stdout;
}

/**
 * After `ip -batch` exits early (see batch.ts) a new process carries on after the op that
 * ended it, so one bad entry does not hold back the rest of the plan on every pass. Each
 * restart is one op further, so this bounds the processes a pathological plan can cost.
 */
const MAX_RESTARTS = 8;

/**
 * Applies ops with one `ip -force -batch -` process, then one `bridge -force -batch -`
 * process (FDB entries need their VXLAN device, which the ip ops create), never one process
 * per entry; a further process only continues a batch that iproute2 ended early despite
 * `-force` (see batch.ts), at most MAX_RESTARTS times. Ops run in the given order within
 * each tool. A failing op does not stop the
 * others; it is reported in `failed` with the tool's message. Deletes are idempotent: a
 * delete whose target (or its device) is already gone counts as applied, as a reconciler
 * wants. Ops that fail validation are reported without reaching the kernel.
 *
 * Throws only when a tool cannot run at all (missing namespace, iproute2 not installed).
 */
export async function applyOps(runner: CommandRunner, ops: readonly KernelOp[], opts: KernelOptions = {}): Promise<ApplyResult> {
  const ns = netnsArgs(opts.netns);
  const failed: Failed[] = [];
  const batches: Record<Tool, Item[]> = { ip: [], bridge: [] };
  ops.forEach((op, index) => {
    const tool = toolFor(op);
    try {
      batches[tool].push({ op, index, lines: tool === 'ip' ? renderIpOp(op) : [renderBridgeOp(op)] });
    } catch (err) {
      const e = CtnetError.from(err, ErrorCode.InvalidArgument);
      failed.push({ index, failure: { op, error: e.message, code: e.code } });
    }
  });
  let applied = 0;
  for (const tool of ['ip', 'bridge'] as const) {
    // Consecutive entry ops form one group and take the fast path; device ops (few) keep the
    // marked path. Groups keep the plan's order: devices, then entries, then removals.
    for (const group of groupRuns(batches[tool])) {
      const result = await runBatch(runner, tool, ns, group);
      applied += result.applied;
      failed.push(...result.failed);
    }
  }
  failed.sort((a, b) => a.index - b.index);
  return { applied, failed: failed.map((f) => f.failure) };
}

interface Item {
  readonly op: KernelOp;
  readonly index: number; // position in the caller's list, to report failures in its order
  readonly lines: readonly string[];
}

type Failed = { index: number; failure: ApplyFailure };

/** FDB and neighbour replaces and deletes: idempotent, so a batch of them can simply be run again. */
const isEntryOp = (op: KernelOp): boolean => /^(fdb|neigh)-/.test(op.op);

function groupRuns(items: readonly Item[]): Item[][] {
  const groups: Item[][] = [];
  for (const item of items) {
    const last = groups[groups.length - 1];
    if (last && isEntryOp(last[0]!.op) === isEntryOp(item.op)) last.push(item);
    else groups.push([item]);
  }
  return groups;
}

async function runBatch(runner: CommandRunner, tool: Tool, ns: readonly string[], items: readonly Item[]): Promise<{ applied: number; failed: Failed[] }> {
  // Fast path for the hot case (thousands of entries): the plain batch without progress
  // markers, which halve the tools' speed. Only when it does not come back clean are the
  // entries run again with markers, to learn which ones failed; running them twice is harmless.
  if (items.length > 0 && items.every((i) => isEntryOp(i.op))) {
    const plain = `${items.flatMap((i) => i.lines).join('\n')}\n`;
    const result = await runner.run(tool, [...ns, '-force', '-batch', '-'], { input: plain });
    if (result.exitCode === 0 && result.stderr.trim() === '') return { applied: items.length, failed: [] };
  }
  let applied = 0;
  const failed: Failed[] = [];
  const settle = (item: Item, message: string | undefined): void => {
    const code = message === undefined ? undefined : kernelErrorCode(message);
    if (message === undefined || (isDelete(item.op) && code === ErrorCode.NotFound)) applied++;
    else failed.push({ index: item.index, failure: { op: item.op, error: cleanMessage(message), code: code ?? ErrorCode.Internal } });
  };

  let rest = items;
  for (let run = 0; rest.length > 0; run++) {
    if (run > MAX_RESTARTS) {
      const error = `not run: ${tool} -batch ended early ${run} times in one apply; left for the next pass`;
      for (const item of rest) failed.push({ index: item.index, failure: { op: item.op, error, code: ErrorCode.Aborted } });
      break;
    }
    const script = buildScript(tool, rest.map((i) => i.lines));
    const result = await runner.run(tool, [...ns, '-force', '-batch', '-'], { input: script.text });
    const outcome = readOutcome(script, result);
    if (!outcome.started) throw kernelError(`${tool} -batch`, result.stderr || `exited with status ${result.exitCode}`);
    for (let i = 0; i < outcome.done; i++) settle(rest[i]!, outcome.failed.get(i));
    if (!outcome.stop) break;
    // The tool exited while on op `done`: blame it, then carry on after it.
    const said = [outcome.failed.get(outcome.done), outcome.stop.message].filter((m) => m).join('\n');
    settle(rest[outcome.done]!, `${said || 'no message'} (${tool} exited with status ${outcome.stop.exitCode} on this op)`);
    rest = rest.slice(outcome.done + 1);
  }
  return { applied, failed };
}

const isDelete = (op: KernelOp): boolean => op.op.endsWith('-del');

// Names under /run/netns: no '/', and no leading '-' that ip would take for an option.
const NETNS = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,254}$/;

function netnsArgs(netns: string | undefined): string[] {
  if (netns === undefined) return [];
  if (!NETNS.test(netns) || netns === '.' || netns === '..') {
    throw invalidArgument(`network namespace name "${netns}" is not valid; use letters, digits, '.', '_' or '-'`);
  }
  return ['-n', netns];
}
