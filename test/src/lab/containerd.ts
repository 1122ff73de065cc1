import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from './lab.js';
import { run, spawnLogged, type LabProcess, type RunResult } from './process.js';

/**
 * A real containerd (Debian's) in a lab host, as if that namespace were its own machine: its
 * own root, state and socket under the lab's work dir, and its own /etc/cni/net.d and
 * /opt/cni/bin (per-host directories bound over them in a mount namespace of its own, which
 * every `ctr` of this host enters too, so `ctr run --cni` finds this host's conflist and
 * plugins). Containers' cgroups sit under ctnetlab-<prefix> (the containerd namespace).
 */
export interface LabContainerd {
  readonly host: string;
  /** containerd namespace, also the cgroup parent of its containers. */
  readonly namespace: string;
  readonly netd: string;
  readonly bin: string;
  /** `ctr` against this containerd, inside its mount and network namespaces. */
  ctr(...args: string[]): Promise<RunResult>;
  /** A long-running `ctr` (e.g. `run --rm --cni` in the foreground: it calls DEL when the task ends). */
  spawnCtr(name: string, ...args: string[]): LabProcess;
  stop(): Promise<void>;
}

export const containerdUnavailableReason = (): string | undefined => {
  for (const [cmd, pkg] of [['containerd', 'containerd'], ['ctr', 'containerd'], ['runc', 'runc']] as const) {
    try {
      execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    } catch {
      return `${cmd} is not installed (apt-get install ${pkg})`;
    }
  }
  if (!existsSync('/usr/lib/cni/loopback')) return 'the CNI plugins are not installed (apt-get install containernetworking-plugins)';
  return undefined;
};

const IMAGE_SCRIPT = join(import.meta.dirname, 'fixtures', 'busybox-oci.sh');
export const LAB_IMAGE = 'docker.io/library/busybox:lab';

/** The two host directories bound over; made here if missing and removed again (only if empty and made by us). */
const CNI_DIRS = ['/etc/cni/net.d', '/opt/cni/bin'];
const made = new Set<string>();

export async function startContainerd(lab: Lab, hostName: string, setup: { conflist: Record<string, unknown>; plugins: Record<string, string> }): Promise<LabContainerd> {
  const host = lab.hosts.find((h) => h.name === hostName);
  if (!host) throw new Error(`no host ${hostName} in lab ${lab.prefix}`);
  const dir = join(lab.workDir, `containerd-${hostName}`);
  const netd = join(dir, 'net.d');
  const bin = join(dir, 'bin');
  for (const d of [netd, bin, join(dir, 'root'), join(dir, 'state')]) mkdirSync(d, { recursive: true });
  for (const d of CNI_DIRS) {
    if (!existsSync(d)) {
      // Only the parent chain that was missing is recorded, deepest last.
      const parts = d.split('/').filter(Boolean);
      for (let i = 1; i <= parts.length; i++) {
        const p = `/${parts.slice(0, i).join('/')}`;
        if (!existsSync(p)) made.add(p);
      }
      mkdirSync(d, { recursive: true });
    }
  }
  writeFileSync(join(netd, '10-ctnet.conflist'), JSON.stringify(setup.conflist, null, 2));
  for (const [name, target] of Object.entries(setup.plugins)) symlinkSync(target, join(bin, name));
  writeFileSync(join(dir, 'config.toml'), 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n');
  const address = join(dir, 'containerd.sock');
  const namespace = `ctnetlab-${lab.prefix}`;
  // rslave: the binds stay in here, while namespaces named in the root (the agent's) still show.
  const inner =
    'set -e; mount --make-rslave /; mount --bind "$D/net.d" /etc/cni/net.d; mount --bind "$D/bin" /opt/cni/bin; ' +
    'exec containerd --config "$D/config.toml" --root "$D/root" --state "$D/state" --address "$D/containerd.sock"';
  const proc = spawnLogged(
    `containerd ${hostName}`,
    ['nsenter', `--net=/run/netns/${host.ns}`, '--', 'unshare', '--mount', '--propagation', 'unchanged', '--', 'sh', '-c', inner],
    join(lab.workDir, `containerd-${hostName}.log`),
    { ...process.env, D: dir },
  );
  const enter = () => ['nsenter', `--target=${proc.pid}`, '--mount', '--net', '--', 'ctr', '--address', address, '--namespace', namespace];
  const ctr = (...args: string[]) => run([...enter(), ...args], { timeoutMs: 60_000 });
  const deadline = Date.now() + 20_000;
  while ((await ctr('version')).code !== 0) {
    if (!proc.running() || Date.now() > deadline) throw new Error(`containerd on ${hostName} did not start (log: ${join(lab.workDir, `containerd-${hostName}.log`)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const image = join(lab.workDir, 'busybox-oci.tar');
  const built = await run(['bash', IMAGE_SCRIPT, image]);
  if (built.code !== 0) throw new Error(`building the lab image: ${built.stderr}`);
  const imported = await ctr('image', 'import', image);
  if (imported.code !== 0) throw new Error(`ctr image import: ${imported.stderr}`);
  const spawned: LabProcess[] = [];

  return {
    host: hostName,
    namespace,
    netd,
    bin,
    ctr,
    spawnCtr(name, ...args) {
      const p = spawnLogged(name, [...enter(), ...args], join(lab.workDir, `ctr-${hostName}.log`), process.env);
      spawned.push(p);
      return p;
    },
    async stop() {
      // Tasks first (their shims outlive containerd otherwise), then the ctr clients, then containerd.
      if (proc.running()) {
        const tasks = (await ctr('task', 'ls', '-q')).stdout.split('\n').filter(Boolean);
        for (const t of tasks) await ctr('task', 'kill', '-s', 'KILL', t);
        for (const t of tasks) {
          for (let i = 0; i < 50 && (await ctr('task', 'rm', '-f', t)).code !== 0; i++) await new Promise((r) => setTimeout(r, 100));
        }
        for (const c of (await ctr('container', 'ls', '-q')).stdout.split('\n').filter(Boolean)) await ctr('container', 'rm', c);
      }
      for (const p of spawned) await p.stop('SIGTERM', 5_000);
      await proc.stop('SIGTERM', 10_000);
      // Shims this containerd started (known by its socket, unique to this run) must not outlive it.
      const shims = (await run(['pgrep', '-f', `containerd-shim.*${address}`])).stdout.split('\n').filter(Boolean).map(Number);
      for (const pid of shims) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      removeCgroups(namespace);
    },
  };
}

/** The containers' cgroup directories (cgroup v1 controllers, or v2), deepest first. */
export function removeCgroups(namespace: string): void {
  for (const base of ['/sys/fs/cgroup', ...readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c))]) {
    const dir = join(base, namespace);
    if (!existsSync(dir)) continue;
    for (const child of readdirSync(dir, { withFileTypes: true })) if (child.isDirectory()) rmdirSafe(join(dir, child.name));
    rmdirSafe(dir);
  }
}

function rmdirSafe(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    /* still in use, or gone */
  }
}

/** Removes the CNI directories this module had to make (only when empty). */
export function removeMadeCniDirs(): void {
  for (const d of [...made].sort((a, b) => b.length - a.length)) {
    try {
      rmdirSync(d);
      made.delete(d);
    } catch {
      /* not empty: someone else uses it */
    }
  }
}

