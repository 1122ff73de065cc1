import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { onProcessEnd } from './exit-hooks.js';
import { readLog, run, spawnLogged, tail, type Exit, type LabProcess, type RunResult } from './process.js';
import { isAlive, ownedNamespaces, sweepSync } from './sweep.mjs';
import {
  AGENT_HTTP,
  MANAGER_HTTP,
  MANAGER_PORT,
  ipArgv,
  nodeCommands,
  planLab,
  randomPrefix,
  underlayCommands,
  type IpCommand,
  type LabHost,
  type LabNode,
  type LabPlan,
} from './topology.js';

/**
 * The multi-host lab: hosts are network namespaces on one Linux bridge, the manager runs in
 * its own namespace, agents (optional) run one per host. The lab only builds the wiring and
 * runs the processes; it assumes nothing about what an agent does.
 *
 *   const lab = await startLab({ hosts: 3, agents: true });
 *   try { ... await lab.ctmgr('network', 'ls') ... await lab.exec('h1', 'ping', '-c1', '-W1', lab.hosts[1]!.addr) ... }
 *   finally { await lab.destroy(); }
 */

export const REPO = resolve(import.meta.dirname, '..', '..', '..');
export const CTMGR_JS = join(REPO, 'packages', 'cli', 'dist', 'bin', 'ctmgr');
export const AGENT_JS = join(REPO, 'packages', 'agent', 'dist', 'bin', 'ctagent');
const WATCHDOG_JS = join(import.meta.dirname, 'watchdog.mjs');
const NETNS_EXEC = join(import.meta.dirname, 'netns-exec.sh');

export type { Exit, LabHost, LabNode, RunResult };

export interface LabOptions {
  /** Number of hosts h1..hN (default 3). */
  readonly hosts?: number;
  /** Start an agent on every host (default false); needs the bundled packages/agent/dist/bin/ctagent. */
  readonly agents?: boolean;
  /** Appended to `ctmgr serve` (later flags override the lab's). */
  readonly managerArgs?: readonly string[];
  /** The agent's entry point (default the bundled packages/agent/dist/bin/ctagent); run as `node <agentJs> run ...`. */
  readonly agentJs?: string;
  /** Appended to every `ctagent run`. */
  readonly agentArgs?: readonly string[];
  /** Extra environment for the agents (CTNET_NETNS_PREFIX is always set, to the host's sandboxPrefix). */
  readonly agentEnv?: Readonly<Record<string, string>>;
  /** `--node-grace` in seconds (default 10). */
  readonly graceSeconds?: number;
  /** `--node-ttl` in seconds (default 3). */
  readonly nodeTtlSeconds?: number;
  /** Agent `--resync-interval` in seconds (default 5). */
  readonly resyncSeconds?: number;
  /** Namespace prefix, "ct" + 6 hex digits; random by default. */
  readonly prefix?: string;
  /** Keep the work dir (logs, data dirs) after destroy; also CTNET_LAB_KEEP=1. */
  readonly keepWorkDir?: boolean;
  /** How long a SIGTERMed process gets before SIGKILL (default 5000 ms). */
  readonly stopTimeoutMs?: number;
  /** How long the manager gets to answer /healthz (default 30000 ms). */
  readonly managerReadyMs?: number;
  /**
   * Agents serve the Docker plugin in <work dir>/<host>/docker/plugins and reach a dockerd at
   * <work dir>/<host>/docker/docker.sock (startDockerd in dockerd.ts); default off.
   */
  readonly docker?: boolean;
}

/** A host or the manager: by name ("h1", "m") or as the object. */
export type NodeRef = string | LabNode;

export interface Lab {
  readonly prefix: string;
  /** "192.168.X.0/24", the underlay. */
  readonly subnet: string;
  readonly hosts: readonly LabHost[];
  /** The manager's namespace and underlay address (name "m"). */
  readonly manager: LabNode;
  /** "192.168.X.254:4700", as agents reach it. */
  readonly managerAddr: string;
  readonly underlayNs: string;
  /** Every agent's CTNET_NETNS_PREFIX starts with this ("<prefix>-s"); each host has its own (host.sandboxPrefix). */
  readonly sandboxPrefix: string;
  /** Logs (manager.log, hN.log) and data dirs (manager/, hN/). */
  readonly workDir: string;
  /** The worker join token agents start with (CTNET_JOIN_TOKEN); a test may change it. */
  joinToken: string;
  /** The admin credential the manager wrote (what ctmgr() runs with). */
  readonly adminDir: string;

  /** Runs the ctmgr CLI inside the manager's namespace, against 127.0.0.1:4700, as admin. */
  ctmgr(...args: string[]): Promise<RunResult>;
  /**
   * Runs a command inside a host's (or the manager's) namespace. On a host it gets that host's
   * agent environment (CTNET_NETNS_PREFIX, CTNET_DATA_DIR), like a shell on that machine.
   */
  exec(node: NodeRef, ...cmd: string[]): Promise<RunResult>;
  /** Runs the agent binary on a host with that host's environment: ctagent('h1', 'ps'). */
  ctagent(host: NodeRef, ...args: string[]): Promise<RunResult>;
  /** Runs a command inside any namespace of this lab (e.g. an agent's sandbox); refuses others. */
  execIn(ns: string, ...cmd: string[]): Promise<RunResult>;

  /** `extraArgs` follow the lab's own flags, so a repeated flag (e.g. --manager) overrides it. */
  startAgent(host: NodeRef, extraArgs?: readonly string[]): void;
  /** SIGTERM by default; SIGKILL after stopTimeoutMs; resolves with how it ended. */
  stopAgent(host: NodeRef, signal?: NodeJS.Signals): Promise<Exit>;
  agentProcess(host: NodeRef): LabProcess | undefined;
  /** Starts (or restarts) the manager on the same data dir and waits for /healthz. */
  startManager(): Promise<void>;
  stopManager(signal?: NodeJS.Signals): Promise<Exit>;

  /** Takes the node's port on the lab switch down (the cable is pulled; eth0 loses carrier). */
  setLinkDown(node: NodeRef): Promise<void>;
  setLinkUp(node: NodeRef): Promise<void>;

  agentLog(host: NodeRef): string;
  managerLog(): string;
  /** The tail of every log, for assertion messages. */
  logs(lines?: number): string;
  /** Every PID this lab started (manager, agents, watchdog), running or not. */
  pids(): number[];
  /** The lab's namespaces that exist now, sandboxes included. */
  namespaces(): string[];
  /** Stops everything, deletes every namespace with the prefix; idempotent. */
  destroy(): Promise<void>;
}

/** Why the lab cannot run here, or undefined if it can (root, iproute2, built ctmgr, netns allowed). */
export function labUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'the lab needs Linux network namespaces';
  if (process.getuid?.() !== 0) return 'the lab needs root (network namespaces, veth, bridges)';
  for (const [tool, pkg] of [['ip', 'iproute2'], ['nsenter', 'util-linux'], ['unshare', 'util-linux'], ['ping', 'iputils-ping']] as const) {
    try {
      execFileSync(tool, ['-V'], { stdio: 'ignore' });
    } catch {
      return `the lab needs ${tool} (${pkg}) on PATH`;
    }
  }
  if (!existsSync(CTMGR_JS)) return `ctmgr is not built (${CTMGR_JS}); run "npx turbo run build"`;
  const probe = `${randomPrefix()}-probe`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    return `cannot create a network namespace: ${(err as { stderr?: Buffer }).stderr?.toString().trim() || String(err)}`;
  }
  execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  return undefined;
}

/** A lab that failed to start; it has already been torn down (see `cleanup`). */
export class LabStartError extends Error {
  override readonly name = 'LabStartError';
  constructor(
    message: string,
    readonly prefix: string,
    readonly pids: readonly number[],
    /** Problems tearing the half-built lab down; empty when it is gone. */
    readonly cleanup: readonly string[],
    options: { cause: unknown },
  ) {
    super(message, options);
  }
}

export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const plan = planLab(opts.prefix ?? randomPrefix(), opts.hosts ?? 3);
  const agentJs = opts.agentJs ?? AGENT_JS;
  if (opts.agents && !existsSync(agentJs)) {
    throw new Error(`agents: true, but the agent is not built (${agentJs}); build it or use agents: false`);
  }
  // The sweep deletes everything with the prefix: never adopt namespaces we did not create.
  const existing = ownedNamespaces(plan.prefix);
  if (existing.length) throw new Error(`namespaces with prefix ${plan.prefix} already exist (${existing.join(' ')}); pick another prefix`);

  const lab = new LabImpl(plan, opts);
  try {
    await lab.build();
    await lab.startManager();
    if (opts.agents) for (const h of plan.hosts) lab.startAgent(h);
    return lab;
  } catch (err) {
    const logs = lab.logs();
    let cleanup: string[] = [];
    try {
      await lab.destroy();
    } catch (e) {
      cleanup = e instanceof AggregateError ? e.errors.map(String) : [String(e)];
    }
    const message = `lab ${plan.prefix} failed to start: ${err instanceof Error ? err.message : String(err)}`;
    throw new LabStartError(`${message}\n${logs}`, plan.prefix, lab.pids(), cleanup, { cause: err });
  }
}

class LabImpl implements Lab {
  readonly prefix: string;
  readonly subnet: string;
  readonly hosts: readonly LabHost[];
  readonly manager: LabNode;
  readonly managerAddr: string;
  readonly underlayNs: string;
  readonly sandboxPrefix: string;
  readonly workDir: string;

  private readonly keep: boolean;
  private readonly stopTimeoutMs: number;
  private managerProc: LabProcess | undefined;
  private readonly agents = new Map<string, LabProcess>();
  private readonly started: number[] = [];
  private readonly watchdog: ChildProcess;
  private readonly unregister: () => void;
  private destroying: Promise<void> | undefined;

  constructor(
    private readonly plan: LabPlan,
    private readonly opts: LabOptions,
  ) {
    this.prefix = plan.prefix;
    this.subnet = `192.168.${plan.subnetOctet}.0/24`;
    this.hosts = plan.hosts;
    this.manager = plan.manager;
    this.managerAddr = plan.managerAddr;
    this.underlayNs = plan.underlayNs;
    this.sandboxPrefix = plan.sandboxPrefix;
    this.keep = opts.keepWorkDir ?? process.env.CTNET_LAB_KEEP === '1';
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 5_000;
    this.workDir = mkdtempSync(join(tmpdir(), `ctnet-lab-${plan.prefix}-`));
    // Both safety nets exist before the first namespace does.
    this.unregister = onProcessEnd(() => this.teardownSync());
    this.watchdog = spawn(process.execPath, [WATCHDOG_JS, String(process.pid), plan.prefix, this.keep ? '-' : this.workDir], {
      detached: true,
      stdio: 'ignore',
    });
    this.watchdog.unref();
    if (this.watchdog.pid) this.started.push(this.watchdog.pid);
  }

  /** Underlay switch first, then one namespace per node, each cabled to it. */
  async build(): Promise<void> {
    for (const cmd of underlayCommands(this.plan)) await this.ip(cmd);
    for (const node of [this.manager, ...this.hosts]) {
      for (const cmd of nodeCommands(this.plan, node)) await this.ip(cmd);
    }
    for (const h of this.hosts) mkdirSync(join(this.workDir, h.name), { recursive: true });
  }

  async startManager(): Promise<void> {
    if (this.managerProc?.running()) throw new Error(`the manager of lab ${this.prefix} is already running (pid ${this.managerProc.pid})`);
    const dataDir = join(this.workDir, 'manager');
    mkdirSync(dataDir, { recursive: true });
    const proc = spawnLogged(
      'ctmgr',
      [
        ...this.nsExec(this.manager.ns),
        process.execPath,
        CTMGR_JS,
        'serve',
        '--listen',
        `0.0.0.0:${MANAGER_PORT}`,
        '--http',
        MANAGER_HTTP,
        '--data-dir',
        dataDir,
        '--node-ttl',
        `${this.opts.nodeTtlSeconds ?? 3}s`,
        '--node-grace',
        `${this.opts.graceSeconds ?? 10}s`,
        ...(this.opts.managerArgs ?? []),
      ],
      join(this.workDir, 'manager.log'),
      process.env,
    );
    this.managerProc = proc;
    if (proc.pid > 0) this.started.push(proc.pid);

    // /healthz listens on the manager's loopback: poll it from inside the namespace, and give
    // up at once if the manager exits (a bad flag, a port in use).
    const ms = this.opts.managerReadyMs ?? 30_000;
    const abort = new AbortController();
    const poll = `const [u, ms] = process.argv.slice(1); const end = Date.now() + Number(ms);
      for (;;) { try { if ((await fetch(u)).ok) process.exit(0); } catch {} if (Date.now() > end) process.exit(1); await new Promise((r) => setTimeout(r, 100)); }`;
    const healthy = run([...this.nsExec(this.manager.ns), process.execPath, '--input-type=module', '-e', poll, `http://${MANAGER_HTTP}/healthz`, String(ms)], {
      timeoutMs: ms + 5_000,
      signal: abort.signal,
    });
    const outcome = await Promise.race([healthy.then((r) => ({ ready: r.code === 0 })), proc.exited.then((exit) => ({ exit }))]);
    abort.abort();
    if ('exit' in outcome) {
      throw new Error(`ctmgr serve exited (${describeExit(outcome.exit)}) before answering /healthz:\n${tail(this.managerLog())}`);
    }
    if (!outcome.ready) throw new Error(`ctmgr serve did not answer /healthz within ${ms} ms:\n${tail(this.managerLog())}`);
    // Hosts join as an operator's would: with the worker token the manager prints.
    if (!this.joinToken) {
      const r = await this.ctmgr('join-token', '-q', 'worker');
      if (r.code !== 0) throw new Error(`ctmgr join-token failed: ${r.stderr}`);
      this.joinToken = r.stdout.trim();
    }
  }

  /** The worker join token agents start with (set once the manager is up). */
  joinToken = '';

  /** The admin credential `ctmgr serve` wrote (the CLI's --tls-dir). */
  get adminDir(): string {
    return join(this.workDir, 'manager', 'admin');
  }

  async stopManager(signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    if (!this.managerProc) throw new Error(`lab ${this.prefix} has no manager process`);
    return this.managerProc.stop(signal, this.stopTimeoutMs);
  }

  startAgent(ref: NodeRef, extraArgs: readonly string[] = []): void {
    const host = this.host(ref);
    const agentJs = this.opts.agentJs ?? AGENT_JS;
    if (!existsSync(agentJs)) throw new Error(`the agent is not built (${agentJs})`);
    const current = this.agents.get(host.name);
    if (current?.running()) throw new Error(`the agent on ${host.name} is already running (pid ${current.pid})`);
    const dataDir = join(this.workDir, host.name);
    mkdirSync(dataDir, { recursive: true });
    const proc = spawnLogged(
      `ctagent ${host.name}`,
      [
        ...this.nsExec(host.ns),
        process.execPath,
        agentJs,
        'run',
        '--manager',
        this.managerAddr,
        '--advertise-addr',
        host.addr,
        '--node-name',
        host.name,
        '--data-dir',
        dataDir,
        '--http',
        AGENT_HTTP,
        '--resync-interval',
        `${this.opts.resyncSeconds ?? 5}s`,
        ...(this.opts.agentArgs ?? []),
        ...extraArgs,
      ],
      join(this.workDir, `${host.name}.log`),
      // The token in the environment, as a secret should be (not on the command line).
      { ...this.hostEnv(host), CTNET_JOIN_TOKEN: this.joinToken },
    );
    this.agents.set(host.name, proc);
    if (proc.pid > 0) this.started.push(proc.pid);
  }

  async stopAgent(ref: NodeRef, signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    const host = this.host(ref);
    const proc = this.agents.get(host.name);
    if (!proc) throw new Error(`no agent was started on ${host.name}`);
    return proc.stop(signal, this.stopTimeoutMs);
  }

  agentProcess(ref: NodeRef): LabProcess | undefined {
    return this.agents.get(this.host(ref).name);
  }

  ctmgr(...args: string[]): Promise<RunResult> {
    return run([...this.nsExec(this.manager.ns), process.execPath, CTMGR_JS, ...args], {
      env: { ...process.env, CTNET_MANAGER: `127.0.0.1:${MANAGER_PORT}`, CTNET_TLS_DIR: this.adminDir },
    });
  }

  async exec(ref: NodeRef, ...cmd: string[]): Promise<RunResult> {
    const node = this.node(ref);
    return this.runIn(node.ns, cmd, node === this.manager ? process.env : this.hostEnv(node as LabHost));
  }

  async ctagent(ref: NodeRef, ...args: string[]): Promise<RunResult> {
    const host = this.host(ref);
    return this.runIn(host.ns, [process.execPath, this.opts.agentJs ?? AGENT_JS, ...args], this.hostEnv(host));
  }

  async execIn(ns: string, ...cmd: string[]): Promise<RunResult> {
    return this.runIn(ns, cmd, process.env);
  }

  private async runIn(ns: string, cmd: readonly string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
    if (!ns.startsWith(`${this.prefix}-`)) throw new Error(`namespace "${ns}" is not part of lab ${this.prefix}`);
    if (cmd.length === 0) throw new Error('exec needs a command');
    return run([...this.nsExec(ns), ...cmd], { env });
  }

  /** What the agent on a host and every command run there see. */
  private hostEnv(host: LabHost): NodeJS.ProcessEnv {
    return {
      ...process.env,
      ...this.opts.agentEnv,
      CTNET_NETNS_PREFIX: host.sandboxPrefix,
      CTNET_DATA_DIR: join(this.workDir, host.name),
      CTNET_CNI_SOCKET: join(this.workDir, host.name, 'cni.sock'),
      CTNET_DOCKER_PLUGIN_DIR: this.opts.docker ? join(this.workDir, host.name, 'docker', 'plugins') : 'none',
      DOCKER_HOST: `unix://${join(this.workDir, host.name, 'docker', 'docker.sock')}`,
    };
  }

  async setLinkDown(ref: NodeRef): Promise<void> {
    return this.ip({ ns: this.underlayNs, args: ['link', 'set', 'dev', this.node(ref).name, 'down'] });
  }

  async setLinkUp(ref: NodeRef): Promise<void> {
    return this.ip({ ns: this.underlayNs, args: ['link', 'set', 'dev', this.node(ref).name, 'up'] });
  }

  agentLog(ref: NodeRef): string {
    return readLog(join(this.workDir, `${this.host(ref).name}.log`));
  }

  managerLog(): string {
    return readLog(join(this.workDir, 'manager.log'));
  }

  logs(lines = 40): string {
    const parts = [`--- manager.log\n${tail(this.managerLog(), lines)}`];
    for (const h of this.hosts) if (this.agents.has(h.name)) parts.push(`--- ${h.name}.log\n${tail(this.agentLog(h), lines)}`);
    return parts.join('\n');
  }

  pids(): number[] {
    return [...this.started];
  }

  namespaces(): string[] {
    return ownedNamespaces(this.prefix);
  }

  destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    const problems: string[] = [];
    // Agents first, so the manager sees them go; then the manager (which stops its etcd).
    await Promise.all([...this.agents.values()].map((p) => p.stop('SIGTERM', this.stopTimeoutMs)));
    await this.managerProc?.stop('SIGTERM', this.stopTimeoutMs);
    problems.push(...sweepSync(this.prefix));
    await this.stopWatchdog();
    this.unregister();
    if (!this.keep) rmSync(this.workDir, { recursive: true, force: true });
    const alive = this.started.filter(isAlive);
    if (alive.length) problems.push(`started processes still alive: ${alive.join(', ')}`);
    if (problems.length) throw new AggregateError(problems.map((p) => new Error(p)), `lab ${this.prefix} was not fully removed: ${problems.join('; ')}`);
  }

  /** The exit/signal path: no waiting on events, SIGKILL at once. */
  private teardownSync(): void {
    for (const p of [this.managerProc, ...this.agents.values()]) if (p?.running()) killQuietly(p.pid);
    const problems = sweepSync(this.prefix);
    if (this.watchdog.exitCode === null && this.watchdog.pid) killQuietly(this.watchdog.pid, 'SIGTERM');
    if (!this.keep) rmSync(this.workDir, { recursive: true, force: true });
    if (problems.length) process.stderr.write(`lab ${this.prefix}: ${problems.join('; ')}\n`);
  }

  private async stopWatchdog(): Promise<void> {
    const w = this.watchdog;
    if (w.exitCode !== null || w.signalCode !== null || !w.pid) return;
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    w.kill('SIGTERM');
    const timer = setTimeout(() => w.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(timer);
  }

  /** Every process of the lab runs in its namespace through netns-exec.sh (why: see there). */
  private nsExec(ns: string): string[] {
    return [NETNS_EXEC, ns];
  }

  private async ip(cmd: IpCommand): Promise<void> {
    const argv = ['ip', ...ipArgv(cmd)];
    const r = await run(argv);
    if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
  }

  private node(ref: NodeRef): LabNode {
    const name = typeof ref === 'string' ? ref : ref.name;
    const found = name === this.manager.name ? this.manager : this.hosts.find((h) => h.name === name);
    if (!found) throw new Error(`lab ${this.prefix} has no node "${name}" (hosts: ${this.hosts.map((h) => h.name).join(', ')}; manager: m)`);
    return found;
  }

  private host(ref: NodeRef): LabHost {
    const node = this.node(ref);
    if (node === this.manager) throw new Error('the manager namespace runs no agent; use a host such as h1');
    return node as LabHost;
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function describeExit(exit: Exit): string {
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}
