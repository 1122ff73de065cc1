import { CtnetError, ErrorCode } from '@ctnet/core';
import { beforeEach, describe, expect, it } from 'vitest';
import { ctmgr, FakeManager, wireContainerDetail, wireEndpoint, wireNetwork } from '../testing/fake-manager.js';

let fake: FakeManager;
beforeEach(() => {
  fake = new FakeManager();
});

const RUN = ['run', '-d', '--name', 'a', '--network', 'n'];

describe('ctmgr run', () => {
  it('accepts --network none, host and container:NAME without endpoint checks', async () => {
    for (const mode of ['none', 'host', 'container:web']) {
      const r = await ctmgr(fake, ['run', '-d', '--name', 'x', '--network', mode, '--', 'sleep', '1']);
      expect(r.code).toBe(0);
    }
    expect(fake.calls.map((c) => (c.args[0] as { network: string }).network)).toEqual(['none', 'host', 'container:web']);
    expect((await ctmgr(fake, ['run', '-d', '--name', 'x', '--network', 'container:', '--', 'sleep', '1'])).code).not.toBe(0);
  });

  it('sends every flag and the command, and prints the container id', async () => {
    const r = await ctmgr(fake, [
      'run', '--detach', '--name', 'web', '--network', 'blue', '--node', 'host2', '--ip', '10.10.0.9',
      '--mac-address', '02:42:0a:0a:00:09', '--hostname', 'www1', '--dns', '10.0.0.53', '--dns', '1.1.1.1',
      '--dns-search', 'corp.example', '--network-alias', 'www', '--network-alias', 'api',
      '-e', 'A=1', '--env', 'GREETING= hello = world ', '-p', '8080:80', '--publish', '127.0.0.1::53/udp', '-P',
      '--expose', '9000-9001', '--link', 'db:database', '--', 'sleep', 'infinity',
    ]);
    expect(r).toMatchObject({ code: 0, out: 'c0ffee0123456789abcdef0123456789\n', err: '' });
    expect(fake.calls).toEqual([
      {
        method: 'runContainer',
        args: [{
          name: 'web', network: 'blue', node: 'host2', ip: '10.10.0.9', mac: '02:42:0a:0a:00:09',
          aliases: ['www', 'api'], cmd: ['sleep', 'infinity'], env: { A: '1', GREETING: ' hello = world ' },
          hostname: 'www1', dns: ['10.0.0.53', '1.1.1.1'], dnsSearch: ['corp.example'], attachPid: 0, attachNetns: '', cni: undefined,
          publish: ['8080:80', '127.0.0.1::53/udp'], publishAll: true, expose: ['9000-9001'], links: ['db:database'],
        }],
      },
    ]);
  });

  it('sends empty optional fields by default (the manager picks the node)', async () => {
    await ctmgr(fake, [...RUN, '--', 'sleep', '1']);
    expect(fake.calls[0]?.args[0]).toEqual({
      name: 'a', network: 'n', node: '', ip: '', mac: '', aliases: [], cmd: ['sleep', '1'],
      env: {}, hostname: '', dns: [], dnsSearch: [], attachPid: 0, attachNetns: '', cni: undefined, publish: [], publishAll: false, expose: [], links: [],
    });
  });

  it('refuses malformed -p, --expose and --link before calling the manager', async () => {
    for (const [flag, value, why] of [
      ['-p', '70000:80', 'invalid host port "70000"'],
      ['-p', '8080:', 'no container port'],
      ['-p', '1.2.3:80:80', '1.2.3'],
      ['-p', '80/sctp', 'invalid protocol "sctp"'],
      ['-p', '8000-8002:80-81', 'same length'],
      ['--expose', 'http', 'invalid port in --expose'],
      ['--link', ':x', 'names no container'],
    ] as const) {
      const r = await ctmgr(fake, [...RUN, flag, value, '--', 'sleep', '1']);
      expect(r.code, `${flag} ${value}`).not.toBe(0);
      expect(r.err).toContain(why);
    }
    const p = await ctmgr(fake, [...RUN, '-P', '--', 'sleep', '1']);
    expect(p.err).toContain('none is exposed');
    expect(fake.calls).toEqual([]);
  });

  it('passes everything after -- to the command, even ctmgr flags', async () => {
    const r = await ctmgr(fake, [...RUN, '--', 'sh', '-c', 'echo --name', '--network', 'x', '--help']);
    expect(r.code).toBe(0);
    expect(fake.calls[0]?.args[0]).toMatchObject({ name: 'a', network: 'n', cmd: ['sh', '-c', 'echo --name', '--network', 'x', '--help'] });
  });

  it('ends ctmgr flags at the first operand, like docker run, when there is no --', async () => {
    await ctmgr(fake, ['run', '-d', '-e', 'K=V', '--name', 'a', '--network=n', 'sh', '-c', 'echo hi', '-d']);
    expect(fake.calls[0]?.args[0]).toMatchObject({ name: 'a', network: 'n', env: { K: 'V' }, cmd: ['sh', '-c', 'echo hi', '-d'] });
  });

  it('requires -d, saying why', async () => {
    const r = await ctmgr(fake, ['run', '--name', 'a', '--network', 'n', '--', 'sleep', '1']);
    expect(r).toMatchObject({
      code: 2,
      out: '',
      err: 'ctmgr: ctnet runs containers detached; pass -d (or --detach); run "ctmgr run --help" for usage\n',
    });
    expect(fake.calls).toEqual([]);
  });

  it('requires --name and a command (usage errors)', async () => {
    const noName = await ctmgr(fake, ['run', '-d', '--network', 'n', '--', 'sleep', '1']);
    expect(noName).toMatchObject({ code: 2, err: 'ctmgr: "ctmgr run" needs --name; run "ctmgr run --help" for usage\n' });
    const noCmd = await ctmgr(fake, [...RUN, '--']);
    expect(noCmd).toMatchObject({ code: 2, err: 'ctmgr: "ctmgr run" needs [--] COMMAND [ARG...]; run "ctmgr run --help" for usage\n' });
    expect(fake.calls).toEqual([]);
  });

  it('runs on the default bridge network without --network, as docker run does', async () => {
    const r = await ctmgr(fake, ['run', '-d', '--name', 'a', '--', 'sleep', '1']);
    expect(r.code).toBe(0);
    expect(fake.calls[0]).toMatchObject({ method: 'runContainer', args: [{ name: 'a', network: '' }] });
  });

  it('rejects unknown flags before the command', async () => {
    const r = await ctmgr(fake, ['run', '-d', '--nmae', 'a', '--network', 'n', '--', 'sleep', '1']);
    expect(r).toMatchObject({ code: 2, err: 'ctmgr: unknown flag --nmae; run "ctmgr run --help" for usage\n' });
  });

  it('runs the manager checks before calling it, also without --node', async () => {
    const cases: [string[], RegExp][] = [
      [['-e', '1X=2'], /environment variable name "1X" is invalid/],
      [['-e', 'NOVALUE'], /--env "NOVALUE" is not of the form KEY=VALUE/],
      [['--dns', 'resolver.local'], /--dns/],
      [['--mac-address', '01:00:5e:00:00:01'], /multicast/],
      [['--network-alias', 'bad_alias'], /alias name "bad_alias" is not a valid DNS label/],
    ];
    for (const [flags, message] of cases) {
      const r = await ctmgr(fake, [...RUN, ...flags, '--', 'sleep', '1']);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(message);
    }
    const badName = await ctmgr(fake, ['run', '-d', '--name', 'my_app', '--network', 'n', '--', 'true']);
    expect(badName.err).toMatch(/^ctmgr: container name "my_app" is not a valid DNS label/);
    expect(fake.calls).toEqual([]);
  });

  it('prints help for --help before the command', async () => {
    const r = await ctmgr(fake, ['run', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Usage:  ctmgr [--manager ADDR] run [OPTIONS] [--] COMMAND [ARG...]\n');
    expect(r.out).toContain('  -e, --env KEY=VALUE');
  });

  it('reports a manager refusal as one line', async () => {
    fake.failures.set('runContainer', new CtnetError(ErrorCode.AlreadyExists, 'container "a" already exists; pick another name'));
    const r = await ctmgr(fake, [...RUN, '--', 'true']);
    expect(r).toMatchObject({ code: 1, out: '', err: 'ctmgr: container "a" already exists; pick another name\n' });
  });
});

describe('ctmgr ps', () => {
  beforeEach(() => {
    fake.networks = [{ network: wireNetwork(), endpoints: 1 }];
    fake.containers = [
      wireContainerDetail({ id: 'feed00000000aaaa', name: 'web', cmd: ['sh', '-c', "echo it's a very long command line"] }),
      wireContainerDetail({ id: 'beef00000000bbbb', name: 'db', node: 'host2', cmd: ['postgres'], ports: [{ protocol: 'tcp', hostIp: '', hostPort: 5432, containerPort: 5432 }] }, [
        wireEndpoint({ networkId: wireNetwork().id, ip: '10.10.0.3', container: 'beef00000000bbbb' }),
        wireEndpoint({ networkId: 'gone0123456789ab', ip: '10.20.0.3', container: 'beef00000000bbbb' }),
      ]),
      wireContainerDetail({ id: 'abcd00000000cccc', name: 'lonely', cmd: ['true'] }, []),
    ];
  });

  it('prints a table sorted by name, with network names and a shortened command', async () => {
    const r = await ctmgr(fake, ['ps']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(fake.calls.map((c) => c.method)).toEqual(['listContainers', 'listEndpoints', 'listNetworks']);
    expect(fake.calls[0]?.args).toEqual([{ node: '' }]);
    expect(r.out).toBe(
      [
        'CONTAINER ID   NAME     NODE    NETWORKS            IP                    PORTS                    COMMAND                          CREATED',
        'beef00000000   db       host2   blue,gone01234567   10.10.0.3,10.20.0.3   0.0.0.0:5432->5432/tcp   postgres                         2026-01-02T03:06:00Z',
        'abcd00000000   lonely   host1   -                   -                     -                        true                             2026-01-02T03:06:00Z',
        "feed00000000   web      host1   blue                10.10.0.2             -                        sh -c 'echo it'\\''s a very lo…   2026-01-02T03:06:00Z",
        '',
      ].join('\n'),
    );
  });

  it('passes --node and prints JSON with network names', async () => {
    const r = await ctmgr(fake, ['ps', '--node', 'host2', '--format', 'json']);
    expect(fake.calls[0]).toEqual({ method: 'listContainers', args: [{ node: 'host2' }] });
    const list = JSON.parse(r.out) as { name: string; endpoints: { network: string }[] }[];
    expect(list.map((c) => c.name)).toEqual(['db', 'lonely', 'web']);
    expect(list[0]?.endpoints.map((e) => e.network)).toEqual(['blue', 'gone0123456789ab']);
  });

  it('prints only the header, without looking up networks, when there are no containers', async () => {
    fake.containers = [];
    const r = await ctmgr(fake, ['ps']);
    expect(r.out).toBe('CONTAINER ID   NAME   NODE   NETWORKS   IP   PORTS   COMMAND   CREATED\n');
    expect(fake.calls.map((c) => c.method)).toEqual(['listContainers', 'listEndpoints']);
  });

  it('lists Docker\'s containers on ctnet networks beside ctnet\'s own, marked, one row per container and host', async () => {
    fake.containers = [];
    fake.endpoints = [
      wireEndpoint({ name: 'dk-1', node: 'host3', ip: '10.10.0.7', origin: 'docker', aliases: ['web1', 'www'], ports: [{ protocol: 'tcp', hostIp: '', hostPort: 8080, containerPort: 80 }] }),
      wireEndpoint({ name: 'plain', node: 'host3', ip: '10.10.0.8' }),
    ];
    const r = await ctmgr(fake, ['ps']);
    expect(r.out).toMatch(/\(docker\)\s+web1\s+host3\s+blue\s+10\.10\.0\.7\s+0\.0\.0\.0:8080->80\/tcp\s+\(see docker ps\)/);
    expect(r.out).not.toContain('plain');
    const json = JSON.parse((await ctmgr(fake, ['ps', '--format', 'json'])).out) as { name: string; origin?: string }[];
    expect(json).toEqual([expect.objectContaining({ name: 'web1', origin: 'docker' })]);
  });

  it('takes no operands', async () => {
    const r = await ctmgr(fake, ['ps', 'web']);
    expect(r).toMatchObject({ code: 2, err: 'ctmgr: "ctmgr ps" takes no operands; unexpected "web"; run "ctmgr ps --help" for usage\n' });
  });
});

describe('ctmgr inspect', () => {
  beforeEach(() => {
    fake.networks = [{ network: wireNetwork(), endpoints: 1 }];
    fake.containers = [
      wireContainerDetail({ name: 'web', cmd: ['sh', '-c', 'echo --name'], env: { Z: '1', A: '2' }, dns: ['10.0.0.53'], dnsSearch: ['corp.example'] }),
    ];
  });

  it('prints a JSON array like docker inspect, with endpoints by network name', async () => {
    const r = await ctmgr(fake, ['inspect', 'web']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(JSON.parse(r.out)).toEqual([
      {
        id: 'c0ffee0123456789abcdef0123456789',
        name: 'web',
        node: 'host1',
        cmd: ['sh', '-c', 'echo --name'],
        env: { A: '2', Z: '1' },
        hostname: 'web',
        dns: ['10.0.0.53'],
        dnsSearch: ['corp.example'],
        createdAt: '2026-01-02T03:06:00Z',
        mode: 'network',
        ports: [],
        expose: [],
        links: [],
        endpoints: [{ network: 'blue', ip: '10.10.0.2', mac: '02:42:0a:0a:00:02', aliases: [], id: 'ep-c0ffee0123456789abcdef0123456789' }],
      },
    ]);
    expect(r.out.indexOf('"A"')).toBeLessThan(r.out.indexOf('"Z"')); // env keys sorted
  });

  it('prints what it found and one error line per missing name, exit 1', async () => {
    const r = await ctmgr(fake, ['inspect', 'ghost', 'web']);
    expect(r.code).toBe(1);
    expect((JSON.parse(r.out) as { name: string }[]).map((c) => c.name)).toEqual(['web']);
    expect(r.err).toBe('ctmgr: no container named ghost; list them with "ctmgr ps"\n');
  });

  it('prints a human summary with --format table', async () => {
    const r = await ctmgr(fake, ['inspect', '--format', 'table', 'web']);
    expect(r.code).toBe(0);
    expect(r.out).toContain("Command:     sh -c 'echo --name'\n");
    expect(r.out).toContain('Env:         A=2, Z=1\n');
    expect(r.out).toMatch(/\n {2}ENDPOINT ID +NAME +NETWORK .*\n {2}ep-c0ffee012 +web +blue +host1 +10\.10\.0\.2 /);
  });
});

describe('ctmgr rm', () => {
  it('removes each name, reports failures on stderr and exits 1 if any failed', async () => {
    fake.failures.set('removeContainer:ghost', new CtnetError(ErrorCode.NotFound, 'no container named ghost; list them with "ctmgr ps"'));
    const r = await ctmgr(fake, ['rm', '-f', 'web', 'ghost', 'db']);
    expect(r).toMatchObject({ code: 1, out: 'web\ndb\n', err: 'ctmgr: no container named ghost; list them with "ctmgr ps"\n' });
    expect(fake.calls.map((c) => c.args)).toEqual([['web'], ['ghost'], ['db']]);
  });

  it('exits 0 when all are removed, with or without --force', async () => {
    expect(await ctmgr(fake, ['rm', 'web'])).toMatchObject({ code: 0, out: 'web\n', err: '' });
    expect(await ctmgr(fake, ['rm', '--force', 'db'])).toMatchObject({ code: 0, out: 'db\n', err: '' });
  });

  it('needs a name', async () => {
    expect(await ctmgr(fake, ['rm'])).toMatchObject({ code: 2, err: 'ctmgr: "ctmgr rm" needs NAME...; run "ctmgr rm --help" for usage\n' });
  });
});

describe('ctmgr logs', () => {
  it('prints the output, or its last N lines', async () => {
    expect(await ctmgr(fake, ['logs', 'web'])).toMatchObject({ code: 0, out: 'one\ntwo\nthree\n' });
    expect(await ctmgr(fake, ['logs', '--tail', '2', 'web'])).toMatchObject({ code: 0, out: 'two\nthree\n' });
    expect((await ctmgr(fake, ['logs', '--tail', 'x', 'web'])).code).toBe(2);
  });
});
