import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { CtnetError, diagnoseHost, ErrorCode, type HostDiagnosis } from '@ctnet/core';
import { readActual } from './netlink/kernel.js';
import type { CommandRunner } from './netlink/runner.js';
import type { PolicyApplier } from './nft/policy.js';
import type { Reconciler } from './reconciler.js';
import type { SandboxRuntime } from './sandbox/runtime.js';
import type { LocalState } from './state.js';
import { listenPrivate } from './unix-socket.js';
import type { Logger } from './log.js';

/**
 * Gathers one diagnosis: what a run would plan from now, the kernel and ctnet's nftables
 * tables read back, the sandboxes' namespaces. Runs as an exclusive reconciler job, so no run
 * changes the kernel halfway through the reading; it changes nothing itself.
 */
export function createDiagnoser(deps: {
  node: string;
  runner: CommandRunner;
  state: LocalState;
  reconciler: Reconciler;
  policy: PolicyApplier;
  sandboxes: SandboxRuntime;
  manager: () => string | undefined;
  appliedRevision: () => number;
}): () => Promise<HostDiagnosis> {
  // Concurrent askers (a retrying script, several operators) share one reading: diag jobs
  // never pile up in front of the reconciler's runs.
  let inFlight: Promise<HostDiagnosis> | undefined;
  const once = (): Promise<HostDiagnosis> =>
    deps.reconciler.exclusive(async () => {
      const wanted = deps.reconciler.wanted();
      const revision = { state: deps.state.revision, applied: deps.appliedRevision() }; // with the state wanted() planned from
      if (!wanted) {
        throw new CtnetError(ErrorCode.FailedPrecondition, `the agent of node ${deps.node} has no desired state yet: it has reached no manager since it started (the kernel keeps what was programmed before); check --manager and the node's certificate, and journalctl -u ctagent`);
      }
      const [actual, tables, netns] = await Promise.all([
        readActual(deps.runner),
        deps.policy.read(wanted.hostTable.name, wanted.sandboxTables.map((t) => t.netns)),
        deps.sandboxes.listNetns(),
      ]);
      return diagnoseHost({
        node: deps.node,
        at: new Date().toISOString(),
        desired: wanted.desired,
        actual,
        networkNames: new Map([...deps.state.networks.values()].map((n) => [n.id, n.name])),
        netns,
        tables: [
          { desired: wanted.hostTable, actual: tables.host },
          ...wanted.sandboxTables.map((t) => ({ netns: t.netns, desired: t.table, actual: tables.sandboxes.get(t.netns) })),
        ],
        revision,
        manager: deps.manager(),
        lastReconcile: deps.reconciler.lastRun,
        driftRepairs: deps.reconciler.driftRepairs,
      });
    });
  return () => (inFlight ??= once().finally(() => (inFlight = undefined)));
}

/** Where `ctagent diag` finds the running agent: beside its state, one per --data-dir. */
export const controlSocketPath = (dataDir: string): string => join(dataDir, 'control.sock');

/** Requests on the control socket: one JSON line in, one JSON line out, then the socket closes. */
const MAX_REQUEST = 4096;
const DEADLINE_MS = 30_000;

/**
 * `<data-dir>/control.sock`, for `ctagent diag` on this host: root only (0600 in a 0700
 * directory, as the CNI socket), since the answer shows the host's whole network layout.
 */
export async function serveControl(opts: { path: string; diagnose: () => Promise<HostDiagnosis>; log: Logger }): Promise<() => Promise<void>> {
  const server = createServer((sock) => handle(sock, opts));
  return listenPrivate(server, opts.path, {
    what: 'the agent control socket',
    taken: 'another ctagent runs with this --data-dir; stop it, or give this one its own --data-dir',
    dirMode: 0o700,
  });
}

function handle(sock: Socket, opts: { diagnose: () => Promise<HostDiagnosis>; log: Logger }): void {
  let buf = '';
  let answered = false;
  const answer = (body: object): void => {
    if (answered) return;
    answered = true;
    sock.end(`${JSON.stringify(body)}\n`);
  };
  const timer = setTimeout(() => answer({ error: `no answer within ${DEADLINE_MS / 1000} s` }), DEADLINE_MS);
  sock.on('close', () => clearTimeout(timer));
  sock.on('error', () => clearTimeout(timer));
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    if (answered) return;
    buf += chunk;
    if (buf.length > MAX_REQUEST) return answer({ error: `request over ${MAX_REQUEST} bytes` });
    const nl = buf.indexOf('\n');
    if (nl < 0) return;
    let op: unknown;
    try {
      op = (JSON.parse(buf.slice(0, nl)) as { op?: unknown }).op;
    } catch {
      return answer({ error: 'the request is not JSON; send {"op":"diag"}' });
    }
    if (op !== 'diag') return answer({ error: `unknown op ${JSON.stringify(op)}; the control socket answers {"op":"diag"}` });
    opts.diagnose().then(
      (report) => answer({ report }),
      (err: unknown) => {
        opts.log.warn('diag failed', { error: String(err) });
        answer({ error: err instanceof Error ? err.message : String(err) });
      },
    );
  });
}
