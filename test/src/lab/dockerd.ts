import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeCgroups } from './containerd.js';
import type { Lab } from './lab.js';
import { run, spawnLogged, type LabProcess, type RunResult } from './process.js';

/**
 * A real dockerd (Debian's docker.io, 20.10) in a lab host, as if that namespace were its own
 * machine (fixtures/docker-host.sh), beside its own containerd: its own data root, exec root and socket under
 * <work dir>/<host>/docker, its plugin directory <…>/docker/plugins seen by it as
 * /run/docker/plugins (where the host's agent serves ctnet.sock: Lab option `docker`), and its
 * containers' cgroups under ctnetlab-<prefix>-<host>. Started with the one line of daemon
 * configuration ctnet asks for, "dns": [the agent's Docker resolver address], in a
 * daemon.json written by `ctagent docker-config`.
 */
export interface LabDockerd {
  readonly host: string;
  readonly dir: string;
  /** The docker CLI against this dockerd. */
  docker(...args: string[]): Promise<RunResult>;
  /** Stops dockerd (SIGTERM: it stops its containers), or kills it (-9: they are left as they are). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again after stop (same state: networks and stopped containers are kept). */
  start(): Promise<void>;
  /** Stops it and removes what it left (processes of this run's containerd, cgroups). */
  destroy(): Promise<void>;
}


const readComm = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};

export const dockerdUnavailableReason = (): string | undefined => {
  for (const [cmd, pkg] of [['dockerd', 'docker.io'], ['containerd', 'containerd'], ['runc', 'runc'], ['iptables', 'iptables']] as const) {
    try {
      execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    } catch {
      return `${cmd} is not installed (apt-get install ${pkg})`;
    }
  }
  return undefined;
};

const AGENT_JS = join(import.meta.dirname, '..', '..', '..', 'packages', 'agent', 'dist', 'bin', 'ctagent');
const HOST_SCRIPT = join(import.meta.dirname, 'fixtures', 'docker-host.sh');
const ROOTFS = join(import.meta.dirname, 'fixtures', 'busybox-rootfs.sh');
// The 20.10 CLI that comes with docker.io, when there (another docker on PATH may be newer).
const CLI = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
export const LAB_DOCKER_IMAGE = 'busybox:lab';

export async function startDockerd(lab: Lab, hostName: string, extraArgs: readonly string[] = []): Promise<LabDockerd> {
  const host = lab.hosts.find((h) => h.name === hostName);
  if (!host) throw new Error(`no host ${hostName} in lab ${lab.prefix}`);
  const dir = join(lab.workDir, hostName, 'docker');
  mkdirSync(join(dir, 'plugins'), { recursive: true });
  const sock = join(dir, 'docker.sock');
  const cgroup = `${lab.prefix}-${hostName}`;
  const log = join(lab.workDir, `dockerd-${hostName}.log`);
  const docker = (...args: string[]) => run([CLI, '-H', `unix://${sock}`, ...args], { timeoutMs: 120_000 });
  // The host's mount namespace (held by a sleeping process), then containerd in it, as a
  // host's init would run them: both outlive any one dockerd.
  const holder = spawnLogged(`docker host ${hostName}`, ['bash', HOST_SCRIPT, host.ns, cgroup, dir], log, process.env);
  const ready = Date.now() + 20_000;
  while (readComm(holder.pid) !== 'sleep') {
    if (!holder.running() || Date.now() > ready) throw new Error(`the Docker host namespace of ${hostName} did not come up (log: ${log})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const enter = ['nsenter', `--target=${holder.pid}`, '--mount', '--uts', '--net', '--'];
  const containerdSock = join(dir, 'containerd', 'containerd.sock');
  writeFileSync(join(dir, 'containerd', 'config.toml'), 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n');
  const containerd = spawnLogged(
    `containerd ${hostName}`,
    [...enter, 'containerd', '--config', join(dir, 'containerd', 'config.toml'), '--root', join(dir, 'containerd', 'root'), '--state', join(dir, 'containerd', 'state'), '--address', containerdSock],
    log,
    process.env,
  );
  // The one line of daemon configuration ctnet asks for, written as a user would: ctagent docker-config.
  const daemonJson = join(dir, 'daemon.json');
  const wrote = await run([process.execPath, AGENT_JS, 'docker-config', '--daemon-json', daemonJson]);
  if (wrote.code !== 0) throw new Error(`ctagent docker-config: ${wrote.stderr}`);
  let proc: LabProcess | undefined;
  const start = async (): Promise<void> => {
    proc = spawnLogged(
      `dockerd ${hostName}`,
      [
        ...enter,
        'dockerd',
        '--containerd', containerdSock,
        '--data-root', join(dir, 'data'),
        '--exec-root', join(dir, 'exec'),
        '--pidfile', join(dir, 'dockerd.pid'),
        '-H', `unix://${sock}`,
        '--cgroup-parent', `/ctnetlab-${cgroup}`,
        '--config-file', daemonJson,
        ...extraArgs,
      ],
      log,
      { ...process.env, DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: '1' },
    );
    const deadline = Date.now() + 60_000;
    while ((await run([CLI, '-H', `unix://${sock}`, 'version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 })).code !== 0) {
      if (!proc.running() || Date.now() > deadline) throw new Error(`dockerd on ${hostName} did not start (log: ${log})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    await proc?.stop(signal, 30_000);
    proc = undefined;
  };
  await start();
  const image = join(lab.workDir, 'busybox-rootfs.tar');
  const built = await run(['bash', ROOTFS, image]);
  if (built.code !== 0) throw new Error(`building the lab image: ${built.stderr}`);
  const imported = await docker('import', '--change', 'CMD ["sh"]', image, LAB_DOCKER_IMAGE);
  if (imported.code !== 0) throw new Error(`docker import: ${imported.stderr}`);
  return {
    host: hostName,
    dir,
    docker,
    stop,
    start,
    async destroy() {
      if (proc) {
        // Containers first, so dockerd leaves no shim behind.
        const ids = (await docker('ps', '-aq')).stdout.split('\n').filter(Boolean);
        if (ids.length > 0) await docker('rm', '-f', ...ids);
      }
      await stop();
      await containerd.stop('SIGTERM', 10_000);
      // Shims of this run's containerd (known by its socket path, unique to this run).
      for (const pattern of [`containerd-shim.*${dir}`]) {
        for (const pid of (await run(['pgrep', '-f', pattern])).stdout.split('\n').filter(Boolean).map(Number)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
      await holder.stop('SIGKILL', 5_000);
      removeCgroups(`ctnetlab-${cgroup}`);
    },
  };
}
