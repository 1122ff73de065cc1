import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { macvlanTempName, replaceTableScript, type DesiredInterface, type DesiredSandbox, type NftTable } from '@ctnet/core';
import type { CommandRunner } from '../netlink/runner.js';
import { hostsFile, resolvConf } from './files.js';

/** A macvlan network's parent interface is not on this host: the sandbox cannot be plumbed here. */
export class ParentMissingError extends Error {
  override readonly name = 'ParentMissingError';
  constructor(readonly itf: DesiredInterface) {
    super(`parent interface ${itf.parent} of its macvlan network does not exist on this host`);
  }
}

/** What the agent records about a local sandbox, so a restarted agent adopts it (and `ctagent ps` can list it). */
export interface SandboxRecord {
  readonly name: string;
  readonly containerId: string;
  readonly netns: string; // '' for --network host
  readonly ownsNetns: boolean;
  readonly attached: boolean; // a process plugged in by `ctagent attach`: never killed by us
  readonly pid: number;
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
  return JSON.stringify([c.id, sb.netns, sb.ownsNetns, sb.interfaces, c.hostname, c.dns, c.dnsSearch, c.attachPid]);
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

  /**
   * One veth per interface, host end on the bridge; or, on a macvlan network, a sub-interface
   * of the host's parent (bridge mode). Made on the host, moved in and renamed: two batches,
   * not a process per step.
   */
  const plumb = async (sb: DesiredSandbox, itf: DesiredInterface, first: boolean, rules: NftTable | undefined): Promise<void> => {
    const tmp = itf.kind === 'macvlan' ? macvlanTempName(itf.endpointId) : `ctvp-${itf.endpointId.slice(0, 8)}`;
    const outside =
      itf.kind === 'macvlan'
        ? [`link add ${tmp} link ${itf.parent} mtu ${itf.mtu} type macvlan mode bridge`, `link set ${tmp} netns ${sb.netns}`]
        : [
            `link add ${itf.hostVeth} mtu ${itf.mtu} type veth peer name ${tmp} mtu ${itf.mtu}`,
            `link set ${tmp} netns ${sb.netns}`,
            `link set ${itf.hostVeth} master ${itf.bridge} up`,
          ];
    try {
      await ip(['-batch', '-'], outside.join('\n') + '\n');
    } catch (err) {
      await ip(['link', 'del', tmp]).catch(() => undefined); // never leave a half-made device on the host
      throw err;
    }
    const inside = ['link set lo up', `link set ${tmp} name ${itf.ifname}`];
    if (itf.kind === 'veth') {
      inside.push(
        `link set ${itf.ifname} address ${itf.mac} mtu ${itf.mtu} up`,
        `addr replace ${itf.cidr} dev ${itf.ifname}`,
        // ARP on the overlay is answered by the local VXLAN proxy and never crosses the network,
        // so retrying every 100 ms instead of every second costs nothing and lets a client reach
        // a peer that appeared a moment after its first attempt without waiting out a second.
        `ntable change name arp_cache dev ${itf.ifname} retrans 100`,
      );
    } else {
      // On the real segment neighbours learn of us by ARP: with arp_notify the interface
      // announces its address (gratuitous ARP) as it comes up, so a peer already trying to
      // reach it gets through at once instead of at its next ARP retry (up to a second later).
      // The address goes on before the link comes up, for the announcement to carry it.
      inside.push(`link set ${itf.ifname} address ${itf.mac} mtu ${itf.mtu}`, `addr replace ${itf.cidr} dev ${itf.ifname}`, `link set ${itf.ifname} up`);
    }
    // The default route goes last: before the address exists the gateway would be unreachable.
    if (first) inside.push(`route replace default via ${itf.gateway} dev ${itf.ifname}`);
    const batch = inside.join('\n') + '\n';
    if (itf.kind === 'veth') await ip(['-n', sb.netns, '-batch', '-'], batch);
    else {
      const res = await runner.run(
        'ip',
        ['netns', 'exec', sb.netns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/conf/all/arp_notify && exec ip -batch -'],
        { input: batch },
      );
      if (res.exitCode !== 0) throw new Error(`plumbing ${itf.ifname} in ${sb.netns}: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
    }
    if (first) await firstRules(sb.netns, rules);
  };

  /**
   * The sandbox's nftables table goes in with its first interface, before its process starts:
   * Docker-style configurations name 127.0.0.11 as their resolver (handed to the embedded one
   * at the gateway), and a service VIP must balance from the first connection. The DNS packet
   * leaves with a loopback source, so the interface must accept that (route_localnet) until
   * postrouting gives it the endpoint's own address.
   */
  const firstRules = async (netns: string, rules: NftTable | undefined): Promise<void> => {
    // route_localnet is or-ed over "all" and the device: "all" covers the resolver's interface whichever it is.
    const res = await runner.run(
      'ip',
      ['netns', 'exec', netns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet && exec nft -f -'],
      { input: rules ? replaceTableScript(rules) : '' },
    );
    if (res.exitCode !== 0) throw new Error(`nftables in ${netns}: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
  };

  /** Plumbs what is missing; says whether it plumbed anything, and whether eth0 (and so the rules) was among it. */
  const plumbAll = async (sb: DesiredSandbox, hostLinks: ReadonlySet<string>, fresh: boolean, rules: NftTable | undefined): Promise<{ plumbed: boolean; first: boolean }> => {
    let plumbed = false;
    let first = false;
    // A namespace made a moment ago holds nothing yet: no need to look inside.
    const inside = fresh ? { stdout: '' } : await runner.run('ip', ['-n', sb.netns, '-d', '-j', 'addr', 'show']);
    const ifaces = new Map<string, { addrs: string[]; mac: string; kind: string }>();
    for (const l of (inside.stdout.trim() ? JSON.parse(inside.stdout) : []) as {
      ifname: string;
      address?: string;
      linkinfo?: { info_kind?: string };
      addr_info?: { family: string; local: string; prefixlen: number }[];
    }[]) {
      ifaces.set(l.ifname, {
        mac: l.address ?? '',
        kind: l.linkinfo?.info_kind ?? '',
        addrs: (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
      });
    }
    for (const [i, itf] of sb.interfaces.entries()) {
      if (itf.kind === 'macvlan' && !hostLinks.has(itf.parent)) throw new ParentMissingError(itf);
      const have = ifaces.get(itf.ifname);
      const whole = itf.kind === 'macvlan' ? have?.kind === 'macvlan' : have !== undefined && hostLinks.has(itf.hostVeth);
      if (!have || !whole) {
        // Half-plumbed (either end gone), or another kind of device in its place: start that interface over.
        if (have) await ip(['-n', sb.netns, 'link', 'del', itf.ifname]).catch(() => undefined);
        if (itf.hostVeth !== '' && hostLinks.has(itf.hostVeth)) await ip(['link', 'del', itf.hostVeth]).catch(() => undefined);
        await plumb(sb, itf, i === 0, rules);
        plumbed = true;
        if (i === 0) first = true;
      } else if (!have.addrs.includes(itf.cidr) || have.mac !== itf.mac) {
        await ip(['-n', sb.netns, '-batch', '-'], `link set ${itf.ifname} address ${itf.mac} up\naddr replace ${itf.cidr} dev ${itf.ifname}\n`);
      }
    }
    // A macvlan interface has no host end whose removal takes it along: one whose endpoint is
    // gone (network disconnect) is deleted here. Not in a namespace a process brought along.
    if (sb.container.attachPid === 0) {
      const wanted = new Set(sb.interfaces.map((i) => i.ifname));
      for (const [name, have] of ifaces) {
        if (have.kind === 'macvlan' && !wanted.has(name)) {
          await ip(['-n', sb.netns, 'link', 'del', name]).catch(() => undefined);
          plumbed = true;
        }
      }
    }
    return { plumbed, first };
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
      const fresh = sb.ownsNetns && !existing.has(sb.netns) && c.attachPid === 0;
      if (sb.ownsNetns && !existing.has(sb.netns)) {
        if (c.attachPid > 0) {
          // pipework-style: name the process's own namespace instead of making a new one
          await ip(['netns', 'attach', sb.netns, String(c.attachPid)]);
        } else await ip(['netns', 'add', sb.netns]);
        // lo comes up with the first interface's batch, or on its own when there is none
        if (sb.interfaces.length === 0) await ip(['-n', sb.netns, 'link', 'set', 'lo', 'up']);
      }
      const { plumbed, first: rulesApplied } = sb.interfaces.length > 0 ? await plumbAll(sb, hostLinks, fresh, rules) : { plumbed: false, first: false };
      if (sb.netns !== '') {
        const dir = join(etcNetns, sb.netns);
        await mkdir(dir, { recursive: true });
        if (sb.ownsNetns) {
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
      const started: SandboxRecord =
        c.attachPid > 0
          ? { name: c.name, containerId: c.id, netns: sb.netns, ownsNetns: true, attached: true, pid: c.attachPid, pidStart: procStart(c.attachPid), log: '', startedAt: new Date().toISOString(), interfaces: recordedInterfaces(sb) }
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
        // An attached process keeps its namespace (and its lo); its veths go with our name.
        if (record.attached) for (const i of record.interfaces) await ip(['-n', record.netns, 'link', 'del', i.ifname]).catch(() => undefined);
        await ip(['netns', 'del', record.netns]).catch(() => undefined);
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

    running: (record) => ours(record),
  };
}
