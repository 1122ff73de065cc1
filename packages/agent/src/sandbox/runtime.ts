import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DesiredSandbox, NftTable } from '@ctnet/core';
import type { CommandRunner } from '../netlink/runner.js';
import { createAttacher, namespaceSource, planInterfaces, type NamespaceSource } from './attachment.js';
import { hostsFile, resolvConf } from './files.js';

/** What the agent records about a local sandbox, so a restarted agent adopts it (and `ctagent ps` can list it). */
export interface SandboxRecord {
  readonly name: string;
  readonly containerId: string;
  readonly netns: string; // '' for --network host
  readonly ownsNetns: boolean;
  readonly attached: boolean; // a namespace someone else brought (ctagent attach, CNI): never killed by us
  /** Where the namespace came from; absent in records of older agents: 'pid' when attached, else 'own'. */
  readonly source?: NamespaceSource['kind'];
  readonly pid: number; // 0: no process (a runtime's namespace, CNI)
  /** The process's start time (/proc/<pid>/stat), so a PID reused after a reboot is never taken for ours. */
  readonly pidStart?: string;
  readonly log: string;
  readonly startedAt: string;
  readonly interfaces: readonly { ifname: string; cidr: string; mac: string; network: string }[];
  /** Times a task's process was started again after it ended, and the current run of quick failures (backoff). */
  readonly restarts?: number;
  readonly streak?: number;
}

export interface SandboxRuntime {
  /** Namespaces of ours that exist now (by prefix). */
  listNetns(): Promise<Set<string>>;
  /** Says whether it started the container, and whether it (re)plumbed any interface. */
  /**
   * Without `thorough`, a sandbox this runtime already ensured, unchanged since, whose
   * namespace and host veths still exist, is taken as it is (no look inside): change-triggered
   * runs then cost nothing per unchanged sandbox. Resyncs pass `thorough` and check everything.
   */
  ensure(
    sb: DesiredSandbox,
    existing: ReadonlySet<string>,
    hostLinks: ReadonlySet<string>,
    thorough?: boolean,
    /** The sandbox's nftables table, put in with eth0 (before the process starts). */
    rules?: NftTable,
  ): Promise<{ started: boolean; plumbed: boolean; rulesApplied?: boolean; record: SandboxRecord | undefined }>;
  /** Starts a task's command again in its existing sandbox (its process ended). */
  restart(sb: DesiredSandbox, previous: SandboxRecord): Promise<SandboxRecord>;
  /** Stops a container (unless attached) and deletes its sandbox if it owns one. */
  remove(record: SandboxRecord): Promise<void>;
  /** Deletes a namespace of ours that no container accounts for. */
  removeOrphan(netns: string): Promise<void>;
  records(): Promise<SandboxRecord[]>;
  running(record: SandboxRecord): boolean;
}

/** Everything of a sandbox that ensure() acts on (not the task's status, which changes often). */
const fingerprint = (sb: DesiredSandbox): string => {
  const c = sb.container;
  return JSON.stringify([c.id, sb.netns, sb.ownsNetns, sb.interfaces, c.hostname, c.dns, c.dnsSearch, c.attachPid, c.attachNetns]);
};

const recordedInterfaces = (sb: DesiredSandbox): SandboxRecord['interfaces'] =>
  sb.interfaces.map((i) => ({ ifname: i.ifname, cidr: i.cidr, mac: i.mac, network: i.networkId }));

export function createSandboxRuntime(opts: {
  runner: CommandRunner;
  dataDir: string;
  netnsPrefix: string;
  etcNetns?: string; // /etc/netns
  hostResolvConf?: string; // /etc/resolv.conf
  /** A process started by this runtime ended. */
  onExit?: (name: string, code: number | null, signal: string | null) => void;
}): SandboxRuntime {
  const { runner } = opts;
  const attacher = createAttacher(runner);
  const recordsDir = join(opts.dataDir, 'sandboxes');
  const logsDir = join(opts.dataDir, 'logs');
  const etcNetns = opts.etcNetns ?? '/etc/netns';

  const ip = async (args: string[], input?: string): Promise<void> => {
    const res = await runner.run('ip', args, input === undefined ? undefined : { input });
    if (res.exitCode !== 0) throw new Error(`ip ${args.join(' ')}: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
  };
  const recordPath = (name: string) => join(recordsDir, `${name}.json`);
  // What this process last ensured per container, and the record it left: the fast path.
  const ensured = new Map<string, { print: string; record: SandboxRecord }>();
  const readRecord = async (name: string): Promise<SandboxRecord | undefined> =>
    readFile(recordPath(name), 'utf8').then((t) => JSON.parse(t) as SandboxRecord, () => undefined);
  /** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat). */
  const procStart = (pid: number): string | undefined => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    } catch {
      return undefined;
    }
  };
  /** Our process is still there: same PID and the same start time. */
  const ours = (r: SandboxRecord): boolean => r.pid > 0 && alive(r.pid) && (r.pidStart === undefined || procStart(r.pid) === r.pidStart);
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  /** Plumbs what is missing (plan, then apply); says whether it plumbed anything, and whether eth0 (and so the rules) was among it. */
  const plumbAll = async (sb: DesiredSandbox, hostLinks: ReadonlySet<string>, fresh: boolean, rules: NftTable | undefined): Promise<{ plumbed: boolean; first: boolean }> => {
    // A namespace made a moment ago holds nothing yet: no need to look inside.
    const actual = fresh ? new Map() : await attacher.readInterfaces(sb.netns);
    const steps = planInterfaces(sb, actual, hostLinks);
    if (steps.length === 0) return { plumbed: false, first: false };
    const { first } = await attacher.apply(sb.netns, steps, rules);
    return { plumbed: steps.some((s) => s.step !== 'readdress'), first };
  };

  const writeIfChanged = async (path: string, content: string): Promise<void> => {
    const old = await readFile(path, 'utf8').catch(() => undefined);
    if (old !== content) await writeFile(path, content);
  };

  const start = async (sb: DesiredSandbox): Promise<SandboxRecord> => {
    await mkdir(logsDir, { recursive: true });
    // By id, not name: a new container under an old name must not show the old one's output.
    const log = join(logsDir, `${sb.container.id}.log`);
    const fd = openSync(log, 'a');
    const c = sb.container;
    // A UTS namespace of its own so the container has its hostname; `ip netns exec` gives it
    // the network namespace and the /etc/netns files. --network host runs as it is on the host.
    const argv =
      sb.netns === ''
        ? c.cmd
        : ['ip', 'netns', 'exec', sb.netns, 'unshare', '--uts', '--', 'sh', '-c', 'hostname "$1" && shift && exec "$@"', 'sh', c.hostname, ...c.cmd];
    const child = spawn(
      argv[0]!,
      argv.slice(1),
      {
        detached: true,
        stdio: ['ignore', fd, fd],
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOSTNAME: c.hostname, ...c.env },
      },
    );
    closeSync(fd);
    child.unref();
    child.on('error', () => undefined);
    child.on('exit', (code, signal) => opts.onExit?.(c.name, code, signal));
    return {
      name: c.name,
      containerId: c.id,
      netns: sb.netns,
      ownsNetns: sb.ownsNetns,
      attached: false,
      pid: child.pid ?? -1,
      ...(child.pid && { pidStart: procStart(child.pid) }),
      log,
      startedAt: new Date().toISOString(),
      interfaces: recordedInterfaces(sb),
    };
  };

  return {
    async listNetns() {
      const res = await runner.run('ip', ['-j', 'netns', 'list']);
      const list = res.stdout.trim() ? (JSON.parse(res.stdout) as { name: string }[]) : [];
      return new Set(list.map((n) => n.name).filter((n) => n.startsWith(opts.netnsPrefix)));
    },

    async ensure(sb, existing, hostLinks, thorough = true, rules) {
      const c = sb.container;
      const print = fingerprint(sb);
      const seen = ensured.get(c.name);
      if (
        !thorough &&
        seen?.print === print &&
        (sb.netns === '' || existing.has(sb.netns)) &&
        sb.interfaces.every((i) => (i.kind === 'macvlan' ? hostLinks.has(i.parent) : hostLinks.has(i.hostVeth)))
      ) {
        return { started: false, plumbed: false, record: seen.record };
      }
      await mkdir(recordsDir, { recursive: true });
      const source = namespaceSource(sb);
      // Named just now: ours holds nothing yet, and in a runtime's our interfaces cannot be
      // there (one of its own under the same name makes the plumbing fail, as it must).
      const fresh = sb.ownsNetns && !existing.has(sb.netns) && source.kind !== 'pid';
      let plumbed = false;
      let rulesApplied = false;
      try {
        if (sb.ownsNetns && !existing.has(sb.netns)) {
          await attacher.ensureNamespace(sb.netns, source);
          // lo comes up with the first interface's batch, or on its own when there is none
          if (sb.interfaces.length === 0) await ip(['-n', sb.netns, 'link', 'set', 'lo', 'up']);
        }
        if (sb.interfaces.length > 0) ({ plumbed, first: rulesApplied } = await plumbAll(sb, hostLinks, fresh, rules));
      } catch (err) {
        // A runtime's namespace bound just now: take out what we made (a veth's two ends are
        // made together, so deleting the host end takes ours inside and never one of the
        // runtime's), then our name for it. A namespace of our own made just now goes too
        // (the next run makes it again from scratch).
        if (fresh) {
          for (const i of sb.interfaces) if (i.hostVeth) await runner.run('ip', ['link', 'del', i.hostVeth]).catch(() => undefined);
          await attacher.detach(sb.netns, source.kind, []);
        }
        throw err;
      }
      if (sb.netns !== '') {
        const dir = join(etcNetns, sb.netns);
        await mkdir(dir, { recursive: true });
        // A runtime's namespace has the runtime's files (the CNI result's dns is its to write).
        if (sb.ownsNetns && source.kind !== 'path') {
          const hostResolv = await readFile(opts.hostResolvConf ?? '/etc/resolv.conf', 'utf8').catch(() => '');
          await writeIfChanged(join(dir, 'resolv.conf'), resolvConf(sb, hostResolv));
          await writeIfChanged(join(dir, 'hosts'), hostsFile(sb));
        }
      }
      const record = await readRecord(c.name);
      if (record && record.containerId === c.id) {
        ensured.set(c.name, { print, record });
        return { started: false, plumbed, rulesApplied, record };
      }
      const base = { name: c.name, containerId: c.id, netns: sb.netns, ownsNetns: true, attached: true, source: source.kind, log: '', startedAt: new Date().toISOString(), interfaces: recordedInterfaces(sb) };
      const started: SandboxRecord =
        source.kind === 'pid'
          ? { ...base, pid: c.attachPid, pidStart: procStart(c.attachPid) }
          : source.kind === 'path'
            ? { ...base, pid: 0 } // an attachment without a workload
            : await start(sb);
      await writeFile(recordPath(c.name), JSON.stringify(started, null, 2));
      ensured.set(c.name, { print, record: started });
      return { started: true, plumbed, rulesApplied, record: started };
    },

    async restart(sb, previous) {
      const next: SandboxRecord = { ...(await start(sb)), restarts: (previous.restarts ?? 0) + 1, streak: previous.streak ?? 1 };
      await writeFile(recordPath(sb.container.name), JSON.stringify(next, null, 2));
      ensured.set(sb.container.name, { print: fingerprint(sb), record: next });
      return next;
    },

    async remove(record) {
      ensured.delete(record.name);
      if (!record.attached && ours(record)) {
        try {
          process.kill(-record.pid, 'SIGTERM'); // the whole process group: it was started detached
        } catch {
          /* already gone */
        }
        for (let i = 0; i < 20 && ours(record); i++) await new Promise((r) => setTimeout(r, 100));
        if (ours(record)) process.kill(-record.pid, 'SIGKILL');
      }
      if (record.ownsNetns && record.netns !== '') {
        const source = record.source ?? (record.attached ? 'pid' : 'own');
        await attacher.detach(record.netns, source, source === 'own' ? [] : record.interfaces.map((i) => i.ifname));
        await rm(join(etcNetns, record.netns), { recursive: true, force: true });
      }
      await rm(recordPath(record.name), { force: true });
      if (record.log) await rm(record.log, { force: true }); // the output goes with the container
    },

    async removeOrphan(netns) {
      await ip(['netns', 'del', netns]).catch(() => undefined);
      await rm(join(etcNetns, netns), { recursive: true, force: true });
    },

    async records() {
      const files = await readdir(recordsDir).catch(() => [] as string[]);
      const out: SandboxRecord[] = [];
      for (const f of files) {
        if (!f.endsWith('.json')) continue;
        // Records are written only here: what this process ensured needs no second read.
        const name = f.slice(0, -5);
        const r = ensured.get(name)?.record ?? (await readRecord(name));
        if (r) out.push(r);
      }
      return out.sort((a, b) => a.name.localeCompare(b.name));
    },

    // An attachment without a workload is up for as long as it is recorded.
    running: (record) => (record.pid === 0 && record.source === 'path') || ours(record),
  };
}
