import { CtnetError, ErrorCode } from '@ctnet/core';
import { beforeEach, describe, expect, it } from 'vitest';
import { COMMANDS } from './commands/index.js';
import { ctmgr, FakeManager } from './testing/fake-manager.js';
import { VERSION } from './version.js';

let fake: FakeManager;
beforeEach(() => {
  fake = new FakeManager();
});

describe('runCli: top level', () => {
  it('prints the version', async () => {
    expect(await ctmgr(fake, ['--version'])).toMatchObject({ code: 0, out: `ctmgr ${VERSION}\n`, err: '' });
  });

  it('lists every verb and the global flags in --help, and with no command', async () => {
    for (const argv of [['--help'], ['-h'], []]) {
      const r = await ctmgr(fake, argv);
      expect(r.code).toBe(0);
      for (const c of COMMANDS) expect(r.out).toContain(`  ${c.path} `);
      expect(r.out).toContain('serve');
      expect(r.out).toContain('--manager ADDR');
      expect(r.out).toContain('CTNET_MANAGER');
    }
  });

  it('lists the single-word container commands first, then the management commands', async () => {
    const r = await ctmgr(fake, ['--help']);
    const commands = r.out.indexOf('\nCommands:\n');
    const management = r.out.indexOf('\nManagement commands:\n');
    expect(commands).toBeGreaterThan(0);
    for (const word of ['serve', 'run', 'ps', 'inspect', 'rm']) {
      const at = r.out.indexOf(`\n  ${word} `);
      expect(at).toBeGreaterThan(commands);
      expect(at).toBeLessThan(management);
    }
    expect(r.out.indexOf('\n  network create ')).toBeGreaterThan(management);
  });

  it('runs a single-word command with the rest of the line as its arguments', async () => {
    const r = await ctmgr(fake, ['--manager', '10.9.9.9:4700', 'ps', '--node', 'host1']);
    expect(r).toMatchObject({ code: 0, address: '10.9.9.9:4700' });
    expect(fake.calls).toEqual([{ method: 'listContainers', args: [{ node: 'host1' }] }, { method: 'listEndpoints', args: [{ network: '', node: 'host1' }] }]);
    expect(fake.closed).toBe(true);
    const help = await ctmgr(fake, ['rm', '--help']);
    expect(help.out).toMatch(/^Usage: {2}ctmgr \[--manager ADDR\] rm \[OPTIONS\] NAME\.\.\.\n/);
  });

  it('lists the verbs of a noun given alone', async () => {
    const r = await ctmgr(fake, ['endpoint']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('endpoint create');
    expect(r.out).not.toContain('network create');
  });

  it('rejects unknown commands, verbs and global flags with exit 2 and a --help hint', async () => {
    expect(await ctmgr(fake, ['netwrok', 'ls'])).toMatchObject({
      code: 2,
      err: 'ctmgr: unknown command "netwrok"; run "ctmgr --help" for usage\n',
    });
    expect(await ctmgr(fake, ['network', 'list-all'])).toMatchObject({
      code: 2,
      err: 'ctmgr: unknown command "ctmgr network list-all"; run "ctmgr network --help" for usage\n',
    });
    expect(await ctmgr(fake, ['node', '--format', 'json', 'ls'])).toMatchObject({
      code: 2,
      err: 'ctmgr: flags go after the command, as in "ctmgr node ls --format"; run "ctmgr node --help" for usage\n',
    });
    expect(await ctmgr(fake, ['--verbose', 'network', 'ls'])).toMatchObject({
      code: 2,
      err: 'ctmgr: unknown global flag --verbose; run "ctmgr --help" for usage\n',
    });
    expect(fake.calls).toEqual([]);
  });

  it('points at the right place for --manager given after the command', async () => {
    const r = await ctmgr(fake, ['network', 'ls', '--manager', '10.0.0.1:4700']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--manager is a global flag; put it before the command');
  });
});

describe('runCli: manager address', () => {
  it('uses --manager over CTNET_MANAGER over the default', async () => {
    const env = { CTNET_MANAGER: '10.1.1.1:4700' };
    expect((await ctmgr(fake, ['network', 'ls'])).address).toBe('127.0.0.1:4700');
    expect((await ctmgr(fake, ['network', 'ls'], { env })).address).toBe('10.1.1.1:4700');
    expect((await ctmgr(fake, ['--manager', '10.2.2.2:4700', 'network', 'ls'], { env })).address).toBe('10.2.2.2:4700');
    expect((await ctmgr(fake, ['--manager=10.3.3.3:4700', 'network', 'ls'], { env })).address).toBe('10.3.3.3:4700');
  });

  it('requires a value for --manager', async () => {
    const r = await ctmgr(fake, ['--manager']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('ctmgr: --manager needs an address such as 127.0.0.1:4700; run "ctmgr --help" for usage\n');
  });

  it('closes the client after the command, also when it fails', async () => {
    await ctmgr(fake, ['network', 'ls']);
    expect(fake.closed).toBe(true);
    const failing = new FakeManager();
    failing.failures.set('listNodes', new CtnetError(ErrorCode.Unavailable, 'cannot reach the manager'));
    const r = await ctmgr(failing, ['node', 'ls']);
    expect(r).toMatchObject({ code: 1, err: 'ctmgr: cannot reach the manager\n' });
    expect(failing.closed).toBe(true);
  });

  it('reports an unexpected exception as one internal-error line', async () => {
    fake.listNetworks = async () => {
      throw new TypeError('boom\nat somewhere');
    };
    expect(await ctmgr(fake, ['network', 'ls'])).toMatchObject({ code: 1, out: '', err: 'ctmgr: internal error: boom at somewhere\n' });
  });
});

describe('runCli: serve', () => {
  it('hands argv, env, the writers and the shutdown hook to the manager and returns its exit code', async () => {
    const env = { CTNET_ETCD_ENDPOINTS: 'http://127.0.0.1:2379' };
    const shutdownHandlers: (() => void)[] = [];
    let stopped = false;
    const r = await ctmgr(fake, ['serve', '--listen', '0.0.0.0:4700'], {
      env,
      onShutdown: (h) => shutdownHandlers.push(h),
      serve: async (argv, e, io) => {
        expect(argv).toEqual(['--listen', '0.0.0.0:4700']);
        expect(e).toBe(env);
        io.stdout('listening\n');
        io.stderr('a log line\n');
        io.onShutdown(() => {
          stopped = true;
        });
        return 3;
      },
    });
    expect(r).toMatchObject({ code: 3, out: 'listening\n', err: 'a log line\n' });
    expect(r.address).toBeUndefined(); // no client is built for serve
    expect(shutdownHandlers).toHaveLength(1);
    shutdownHandlers[0]?.();
    expect(stopped).toBe(true);
  });

  it('passes --help through to the manager rather than printing ctmgr help', async () => {
    const seen: string[][] = [];
    const r = await ctmgr(fake, ['serve', '--help'], {
      serve: async (argv, _e, io) => {
        seen.push([...argv]);
        io.stdout('Usage: ctmgr serve [flags]\n');
        return 0;
      },
    });
    expect(seen).toEqual([['--help']]);
    expect(r.out).toBe('Usage: ctmgr serve [flags]\n');
  });

  it('turns a serve failure into one line', async () => {
    const r = await ctmgr(fake, ['serve'], {
      serve: async () => {
        throw new CtnetError(ErrorCode.InvalidArgument, '--listen "x" is not host:port; write it like 127.0.0.1:4700');
      },
    });
    expect(r).toMatchObject({ code: 1, err: 'ctmgr: --listen "x" is not host:port; write it like 127.0.0.1:4700\n' });
  });
});
