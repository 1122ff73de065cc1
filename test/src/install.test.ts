import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, cp, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from './harness.js';

// deploy/install.sh, the systemd units and deploy/package.sh, run for real into scratch roots
// (--root): nothing here touches the host's /, its systemd or its network.
const INSTALL = join(REPO, 'deploy', 'install.sh');
const UNITS = join(REPO, 'deploy', 'systemd');
const BUILT = { ctmgr: join(REPO, 'packages/cli/dist/bin/ctmgr'), ctagent: join(REPO, 'packages/agent/dist/bin/ctagent'), cni: join(REPO, 'packages/cni/dist/ctnet') };
const TOKEN = `CTNET-1-${'0123456789'.repeat(5)}-${'abcde'.repeat(5)}`;
const NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

const onPath = (cmd: string) => (process.env.PATH ?? '').split(delimiter).some((d) => existsSync(join(d, cmd)));
const isRoot = process.getuid?.() === 0;

interface Result { code: number; out: string; err: string }
const run = (cmd: string, args: string[], env: Record<string, string> = {}) =>
  new Promise<Result>((resolve) =>
    execFile(cmd, args, { env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (error, out, err) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out, err }),
    ),
  );
const install = (...args: string[]) => run('bash', [INSTALL, ...args]);

const scratch: string[] = [];
afterAll(async () => {
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ctnet-install-'));
  scratch.push(dir);
  return dir;
}

/** A scratch host with some of the directories install.sh uses already there, and things of its own. */
async function seededRoot(): Promise<string> {
  const root = await tempDir();
  await mkdir(join(root, 'usr/local/bin'), { recursive: true });
  await writeFile(join(root, 'usr/local/bin/other-tool'), '#!/bin/sh\n', { mode: 0o755 });
  await mkdir(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  await symlink('/lib/systemd/system/ssh.service', join(root, 'etc/systemd/system/multi-user.target.wants/ssh.service'));
  await mkdir(join(root, 'var/lib'), { recursive: true });
  await mkdir(join(root, 'opt/empty'), { recursive: true });
  return root;
}

/** Every path under root (empty directories too) with its type, mode and content digest. */
async function listing(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const st = await lstat(path);
      const rel = path.slice(root.length);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`${rel} -> ${await readlink(path)}`);
      else if (st.isDirectory()) {
        out.push(`${rel}/ ${mode}`);
        await walk(path);
      } else out.push(`${rel} ${mode} ${createHash('sha256').update(await readFile(path)).digest('hex').slice(0, 16)}`);
    }
  };
  await walk(root);
  return out;
}

const modeOf = async (path: string) => ((await lstat(path)).mode & 0o7777).toString(8);
const same = async (a: string, b: string) => (await readFile(a)).equals(await readFile(b));
/** The one line a refused run prints: exit 1, nothing on stdout. */
function refused(r: Result): string {
  expect(r, r.err).toMatchObject({ code: 1, out: '' });
  const lines = r.err.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^install\.sh: /);
  return lines[0]!;
}

describe('install.sh', () => {
  it('installs the manager (files, modes, unit enabled), twice to the same result, and uninstalls to the root it found', async () => {
    const root = await tempDir();
    const before = await listing(root);
    const first = await install('manager', '--root', root);
    expect(first).toMatchObject({ code: 0, err: '' });

    expect(await modeOf(join(root, 'usr/local/bin/ctmgr'))).toBe('755');
    expect(await same(join(root, 'usr/local/bin/ctmgr'), BUILT.ctmgr)).toBe(true);
    expect(await modeOf(join(root, 'etc/systemd/system/ctmgr.service'))).toBe('644');
    expect(await same(join(root, 'etc/systemd/system/ctmgr.service'), join(UNITS, 'ctmgr.service'))).toBe(true);
    expect(await modeOf(join(root, 'etc/ctnet/ctmgr.env'))).toBe('600');
    expect(await modeOf(join(root, 'var/lib/ctnet'))).toBe('700');
    expect(existsSync(join(root, 'usr/local/bin/ctagent'))).toBe(false);
    if (onPath('systemctl')) {
      expect(await readlink(join(root, 'etc/systemd/system/multi-user.target.wants/ctmgr.service'))).toBe('/etc/systemd/system/ctmgr.service');
    }
    const manifest = await readFile(join(root, 'var/lib/ctnet/install-manifest'), 'utf8');
    expect(manifest).toContain('manager /usr/local/bin/ctmgr\n');
    expect(manifest).toContain('manager /etc/ctnet/ctmgr.env\n');
    expect(manifest).toContain('d /etc/ctnet\n');

    const installed = await listing(root);
    expect(await install('manager', '--root', root)).toMatchObject({ code: 0, err: '' });
    expect(await listing(root)).toEqual(installed);

    expect(await install('manager', '--root', root, '--uninstall')).toMatchObject({ code: 0, err: '' });
    expect(await listing(root)).toEqual(before);
    // a second uninstall finds nothing to do, and says so
    expect((await install('manager', '--root', root, '--uninstall')).out).toMatch(/nothing to uninstall/);
  });

  it('installs the agent with its settings, keeps the env file\'s other keys on a rerun, and uninstalls to the root it found', async () => {
    const root = await seededRoot();
    const before = await listing(root);
    const r = await install('agent', '--root', root, '--manager', '10.0.0.1:4700', '--join-token', TOKEN, '--advertise-addr', '192.168.1.10');
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(await modeOf(join(root, 'usr/local/bin/ctagent'))).toBe('755');
    expect(await same(join(root, 'etc/systemd/system/ctagent.service'), join(UNITS, 'ctagent.service'))).toBe(true);
    // the CNI plugin is optional: installed exactly when it is built
    expect(existsSync(join(root, 'opt/cni/bin/ctnet'))).toBe(existsSync(BUILT.cni));
    const env = join(root, 'etc/ctnet/ctagent.env');
    expect(await modeOf(env)).toBe('600');
    const settings = (await readFile(env, 'utf8')).split('\n').filter((l) => l && !l.startsWith('#'));
    expect(settings).toEqual(['CTNET_MANAGER=10.0.0.1:4700', `CTNET_JOIN_TOKEN=${TOKEN}`, 'CTNET_ADVERTISE_ADDR=192.168.1.10']);

    // An operator's own key and comment; then a new manager address, and no token (it is kept).
    await writeFile(env, `${await readFile(env, 'utf8')}# resolver answers live longer here\nCTNET_DNS_TTL=7\n`);
    expect(await install('agent', '--root', root, '--manager=10.0.0.2:4700')).toMatchObject({ code: 0, err: '' });
    const text = await readFile(env, 'utf8');
    expect(text.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
      'CTNET_MANAGER=10.0.0.2:4700', `CTNET_JOIN_TOKEN=${TOKEN}`, 'CTNET_ADVERTISE_ADDR=192.168.1.10', 'CTNET_DNS_TTL=7',
    ]);
    expect(text).toContain('# resolver answers live longer here\n');
    expect(await modeOf(env)).toBe('600');
    const installed = await listing(root);
    expect(await install('agent', '--root', root, '--manager=10.0.0.2:4700')).toMatchObject({ code: 0, err: '' });
    expect(await listing(root)).toEqual(installed);

    const un = await install('agent', '--root', root, '--uninstall');
    expect(un).toMatchObject({ code: 0, err: '' });
    expect(await listing(root)).toEqual(before);
  });

  it('keeps one role when the other is uninstalled from the same host, and the data unless --purge', async () => {
    const root = await seededRoot();
    const before = await listing(root);
    expect((await install('manager', '--root', root)).code).toBe(0);
    expect((await install('agent', '--root', root, '--manager', '127.0.0.1', '--join-token', TOKEN)).code).toBe(0);
    const both = await listing(root);
    expect((await install('manager', '--root', root)).code).toBe(0);
    expect(await listing(root)).toEqual(both);

    // The agent joined (it has its node certificate) and the manager made its data.
    await mkdir(join(root, 'var/lib/ctnet/agent/tls'), { recursive: true, mode: 0o700 });
    await writeFile(join(root, 'var/lib/ctnet/agent/tls/cert.pem'), 'node cert', { mode: 0o600 });
    await mkdir(join(root, 'var/lib/ctnet/etcd'), { recursive: true, mode: 0o700 });
    await writeFile(join(root, 'var/lib/ctnet/etcd/member'), 'etcd data', { mode: 0o600 });

    expect(await install('agent', '--root', root, '--uninstall')).toMatchObject({ code: 0, err: '' });
    expect(existsSync(join(root, 'usr/local/bin/ctagent'))).toBe(false);
    expect(existsSync(join(root, 'etc/ctnet/ctagent.env'))).toBe(false);
    for (const f of ['usr/local/bin/ctmgr', 'etc/ctnet/ctmgr.env', 'etc/systemd/system/ctmgr.service', 'var/lib/ctnet/agent/tls/cert.pem']) {
      expect(existsSync(join(root, f)), f).toBe(true);
    }
    // With its certificate kept, the agent comes back without a token.
    const again = await install('agent', '--root', root, '--manager', '127.0.0.1');
    expect(again).toMatchObject({ code: 0, err: '' });
    expect(await readFile(join(root, 'etc/ctnet/ctagent.env'), 'utf8')).not.toContain('CTNET_JOIN_TOKEN');

    expect(await install('agent', '--root', root, '--uninstall', '--purge')).toMatchObject({ code: 0, err: '' });
    expect(existsSync(join(root, 'var/lib/ctnet/agent'))).toBe(false);
    expect(existsSync(join(root, 'var/lib/ctnet/etcd/member'))).toBe(true); // the manager's
    expect(await install('manager', '--root', root, '--uninstall', '--purge')).toMatchObject({ code: 0, err: '' });
    expect(await listing(root)).toEqual(before);
  });

  it('drops a kept join token once the host holds its node certificate, and purges only a directory of ctnet\'s', async () => {
    const root = await tempDir();
    expect((await install('agent', '--root', root, '--manager', 'm1:4700', '--join-token', TOKEN)).code).toBe(0);
    const env = join(root, 'etc/ctnet/ctagent.env');
    expect(await readFile(env, 'utf8')).toContain(`CTNET_JOIN_TOKEN=${TOKEN}`);
    // the agent joined: its credential is there; a rerun (an upgrade) drops the token
    await mkdir(join(root, 'var/lib/ctnet/agent/tls'), { recursive: true });
    await writeFile(join(root, 'var/lib/ctnet/agent/tls/cert.pem'), 'x');
    const rerun = await install('agent', '--root', root);
    expect(rerun.code).toBe(0);
    expect(rerun.out).toMatch(/CTNET_JOIN_TOKEN removed from \/etc\/ctnet\/ctagent\.env/);
    const text = await readFile(env, 'utf8');
    expect(text).not.toContain('CTNET_JOIN_TOKEN');
    expect(text).toContain('CTNET_MANAGER=m1:4700');
    // a data directory that is not the agent's is not purged
    await writeFile(env, `${text}CTNET_DATA_DIR=/srv/data\n`);
    await mkdir(join(root, 'srv/data/precious'), { recursive: true });
    const purge = await install('agent', '--root', root, '--uninstall', '--purge');
    expect(purge.code).toBe(1);
    expect(purge.err).toMatch(/refusing to purge \/srv\/data: it holds none of the agent's data/);
    expect(existsSync(join(root, 'srv/data/precious'))).toBe(true);
  });

  it('refuses bad input with one line naming the problem and the fix, and writes nothing', async () => {
    const root = await seededRoot();
    const before = await listing(root);
    const cases: [string[], RegExp][] = [
      [['agent', '--manager', 'm1', '--join-token', 'CTNET-1-abc-def'], /the join token is malformed; it looks like CTNET-1-<50 digits and letters>-<25 digits and letters>: print a valid one on a manager with "ctmgr join-token worker"/],
      [['agent', '--manager', 'm1', '--join-token', TOKEN.toUpperCase()], /the join token is malformed/],
      [['agent', '--join-token', TOKEN], /the agent needs --manager ADDR \(a manager's gRPC address, e\.g\. 10\.0\.0\.1:4700\)/],
      [['agent', '--manager', 'm1'], /the agent needs --join-token on its first install \(no node certificate in \/var\/lib\/ctnet\/agent\/tls\); print one on a manager with "ctmgr join-token worker"/],
      [['manager', '--bogus'], /unknown option --bogus; see install\.sh --help/],
      [['worker'], /unknown role worker; use manager or agent/],
      [[], /no role given; use install\.sh manager\|agent/],
      [['manager', 'agent'], /two roles given \(manager, agent\)/],
      [['agent', '--manager'], /--manager needs a value/],
      [['manager', '--join-token', TOKEN], /--join-token is for the agent; the manager's settings go in \/etc\/ctnet\/ctmgr\.env/],
      [['agent', '--manager', 'm1', '--join-token', TOKEN, '--advertise-addr', 'eth0'], /--advertise-addr eth0 is not an IP address/],
      [['manager', '--purge'], /--purge goes with --uninstall/],
      [['agent', '--manager', 'm1; rm -rf /', '--join-token', TOKEN], /--manager .* is not a list of addresses/],
    ];
    for (const [args, message] of cases) {
      const line = refused(await install(...args, '--root', root));
      expect(line, args.join(' ')).toMatch(message);
    }
    expect(refused(await install('manager', '--root', join(root, 'nowhere')))).toMatch(/--root .*nowhere is not a directory; create it first/);
    expect(await listing(root)).toEqual(before);
  });

  it('refuses a Node.js older than 20, naming the version found', async () => {
    const root = await tempDir();
    const fake = await tempDir();
    await writeFile(join(fake, 'node'), '#!/bin/sh\necho 18.19.0\n');
    await chmod(join(fake, 'node'), 0o755);
    const r = await run('bash', [INSTALL, 'manager', '--root', root], { PATH: `${fake}${delimiter}${process.env.PATH}` });
    expect(refused(r)).toMatch(new RegExp(`Node\\.js 18\\.19\\.0 \\(${fake}/node\\) is too old; ctnet needs Node\\.js >= 20`));
    expect(await readdir(root)).toEqual([]);
  });

  // Into / only as an unprivileged user (nobody), who cannot write there whatever the script
  // does; from a copy nobody can read wherever the checkout is (both refusals come before it
  // looks for the executables).
  const asNobody = async (...args: string[]) => {
    const dir = await tempDir();
    await chmod(dir, 0o755);
    await cp(INSTALL, join(dir, 'install.sh'));
    return run('setpriv', [...NOBODY, 'bash', join(dir, 'install.sh'), ...args]);
  };
  it.skipIf(!isRoot || !onPath('setpriv'))('refuses to install into / when not root', async () => {
    const r = await asNobody('manager');
    expect(refused(r)).toBe('install.sh: must run as root to install into /; run it with sudo, or stage the files with --root DIR');
  });

  it.skipIf(!isRoot || !onPath('setpriv') || !onPath('ss'))('names the process holding 4789/udp before an agent install into /', async (ctx) => {
    // The holder runs as nobody too, so that nobody's `ss -p` can name it.
    const holder = spawn('setpriv', [...NOBODY, process.execPath, '-e',
      "const s = require('dgram').createSocket('udp4'); s.on('error', (e) => { console.log(e.code); process.exit(1); }); s.bind(4789, '127.0.0.1', () => console.log('bound'));"], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const first = await new Promise<string>((resolve) => createInterface({ input: holder.stdout! }).once('line', resolve));
      // Something else holds the port already (as root, so nobody's ss cannot name it): no case to check.
      if (first !== 'bound') return ctx.skip();
      const r = await asNobody('agent', '--manager', 'm1', '--join-token', TOKEN);
      expect(refused(r)).toBe(`install.sh: 4789/udp (VXLAN) is already in use by node (pid ${holder.pid}); stop it, or run the cluster on another port (ctmgr serve --vxlan-port)`);
    } finally {
      holder.kill();
    }
  });
});

describe('the env files the units read', () => {
  it('are refused by the executables when a key is unknown, naming it, before anything starts', async () => {
    const root = await tempDir();
    expect((await install('agent', '--root', root, '--manager', 'm1:4700', '--join-token', TOKEN)).code).toBe(0);
    const env = join(root, 'etc/ctnet/ctagent.env');
    await writeFile(env, `${await readFile(env, 'utf8')}CTNET_MANGER=m2:4700\n`);
    const agent = await run(process.execPath, [join(root, 'usr/local/bin/ctagent'), 'run', '--config', env]);
    expect(agent.code).toBe(1);
    expect(agent.err).toMatch(/ctagent\.env:\d+: unknown setting CTNET_MANGER; remove it or use one of CTNET_MANAGER,/);
    const mgrEnv = join(root, 'ctmgr.env');
    await writeFile(mgrEnv, 'CTNET_LISTEN=127.0.0.1:0\nCTNET_VXLAN=4790\n');
    const mgr = await run(process.execPath, [BUILT.ctmgr, 'serve', '--config', mgrEnv]);
    expect(mgr.code).toBe(1);
    expect(mgr.err).toMatch(/ctmgr\.env:2: unknown setting CTNET_VXLAN; remove it or use one of .*CTNET_VXLAN_PORT/);
  });
});

describe('systemd units', () => {
  it('spell what the brief asks for', async () => {
    const mgr = await readFile(join(UNITS, 'ctmgr.service'), 'utf8');
    const agent = await readFile(join(UNITS, 'ctagent.service'), 'utf8');
    expect(mgr).toMatch(/^ExecStart=\/usr\/local\/bin\/ctmgr serve --config \/etc\/ctnet\/ctmgr\.env$/m);
    expect(mgr).toMatch(/^StateDirectory=ctnet$/m);
    expect(agent).toMatch(/^ExecStart=\/usr\/local\/bin\/ctagent run --config \/etc\/ctnet\/ctagent\.env$/m);
    // a restart of the agent must not kill the sandboxes' workloads, which live in its cgroup
    expect(agent).toMatch(/^KillMode=process$/m);
    expect(agent).toMatch(/^Before=docker\.service containerd\.service$/m);
    expect(agent).not.toMatch(/^(ProtectSystem|PrivateNetwork|CapabilityBoundingSet|RestrictNamespaces|NoNewPrivileges)=/m);
    for (const unit of [mgr, agent]) {
      expect(unit).toMatch(/^Restart=on-failure$/m);
      expect(unit).toMatch(/^After=network-online\.target/m);
      expect(unit).toMatch(/^WantedBy=multi-user\.target$/m);
    }
  });

  // Verified as installed: in a scratch root holding the executables at /usr/local/bin (verify
  // checks ExecStart there) and a copy of the host's stock units (network-online.target, ...).
  it.skipIf(!onPath('systemd-analyze'))('pass systemd-analyze verify where their executables exist, and fail it where they do not', async () => {
    const root = await tempDir();
    expect((await install('manager', '--root', root)).code).toBe(0);
    expect((await install('agent', '--root', root, '--manager', 'm1', '--join-token', TOKEN)).code).toBe(0);
    await cp('/lib/systemd/system', join(root, 'lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
    const verify = (...units: string[]) => run('systemd-analyze', ['verify', `--root=${root}`, ...units.map((u) => `/etc/systemd/system/${u}`)]);

    // verify exits 0 on unknown keys and bad values (it only warns): no output is the pass
    expect(await verify('ctmgr.service', 'ctagent.service')).toEqual({ code: 0, out: '', err: '' });

    // ...and it does catch a broken unit and a missing executable here, so the pass means something
    const typo = join(root, 'etc/systemd/system/ctagent.service');
    await writeFile(typo, (await readFile(typo, 'utf8')).replace('KillMode=process', 'KillMode=proces'));
    expect((await verify('ctagent.service')).err).toMatch(/Failed to parse kill mode specification, ignoring: proces/);
    await rm(join(root, 'usr/local/bin/ctmgr'));
    const missing = await verify('ctmgr.service');
    expect(missing.code).not.toBe(0);
    expect(missing.err).toMatch(/Command \/usr\/local\/bin\/ctmgr is not executable: No such file or directory/);
  });
});

describe('package.sh', () => {
  it.skipIf(!onPath('dpkg-deb'))('builds a .deb with the executables, units and install.sh, which installs from it', async () => {
    const out = await tempDir();
    const built = await run('bash', [join(REPO, 'deploy', 'package.sh'), '--out', out]);
    expect(built.code, built.err).toBe(0);
    const version = JSON.parse(await readFile(join(REPO, 'packages/cli/package.json'), 'utf8')).version as string;
    const arch = (await run('dpkg', ['--print-architecture'])).out.trim();
    const deb = join(out, `ctnet_${version}_${arch}.deb`);
    expect(built.out.trim().split('\n').at(-1)).toBe(deb);

    const contents = (await run('dpkg-deb', ['-c', deb])).out;
    for (const f of ['bin/ctmgr', 'bin/ctagent', 'systemd/ctmgr.service', 'systemd/ctagent.service', 'install.sh', 'examples/ctagent.env']) {
      expect(contents).toMatch(new RegExp(`^-rw[-x]r-[-x]r-[-x] root/root .* \\./usr/share/ctnet/${f.replace(/\./g, '\\.')}$`, 'm'));
    }
    expect(contents).toMatch(/^-rwxr-xr-x root\/root .* \.\/usr\/share\/ctnet\/bin\/ctagent$/m);
    expect(contents).toMatch(/ \.\/usr\/sbin\/ctnet-install -> \.\.\/share\/ctnet\/install\.sh$/m);
    const info = (await run('dpkg-deb', ['-I', deb])).out;
    expect(info).toMatch(/^ Depends: nodejs \(>= 20\), iproute2, nftables$/m);
    expect(info).toMatch(new RegExp(`^ Version: ${version.replace(/\./g, '\\.')}$`, 'm'));

    // The packaged layout works: ctnet-install from the unpacked package installs its own executables.
    const unpacked = await tempDir();
    expect((await run('dpkg-deb', ['-x', deb, unpacked])).code).toBe(0);
    const root = await tempDir();
    const r = await run(join(unpacked, 'usr/sbin/ctnet-install'), ['agent', '--root', root, '--manager', 'm1', '--join-token', TOKEN]);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(await same(join(root, 'usr/local/bin/ctagent'), join(unpacked, 'usr/share/ctnet/bin/ctagent'))).toBe(true);
  });
});
