import { CtnetError, ErrorCode } from '@ctnet/core';
import { beforeEach, describe, expect, it } from 'vitest';
import { ctmgr, FakeManager, wireEndpoint, wireNetwork } from '../testing/fake-manager.js';

let fake: FakeManager;
beforeEach(() => {
  fake = new FakeManager();
});

describe('ctmgr network create', () => {
  it('maps every flag onto the request and prints the new id', async () => {
    const r = await ctmgr(fake, [
      'network', 'create', '-d', 'overlay', '--subnet', '10.20.0.0/24', '--gateway', '10.20.0.254',
      '--ip-range', '10.20.0.128/25', '--aux-address', 'router=10.20.0.2', '--aux-address', 'nas=10.20.0.3',
      '--attachable', '--internal', '-o', 'mtu=1400', '--opt', 'vni=5000', '--label', 'env=dev', 'blue',
    ]);
    expect(r).toMatchObject({ code: 0, out: 'new0123456789abcdef\n', err: '' });
    expect(fake.calls).toEqual([
      {
        method: 'createNetwork',
        args: [
          {
            name: 'blue',
            driver: 'overlay',
            subnet: '10.20.0.0/24',
            gateway: '10.20.0.254',
            ipRange: '10.20.0.128/25',
            auxAddresses: { router: '10.20.0.2', nas: '10.20.0.3' },
            attachable: true,
            internal: true,
            options: { mtu: '1400', vni: '5000' },
            labels: { env: 'dev' },
            node: '',
          },
        ],
      },
    ]);
  });

  it('leaves unset flags empty so the manager picks driver, subnet and gateway', async () => {
    const r = await ctmgr(fake, ['network', 'create', 'blue']);
    expect(r.code).toBe(0);
    expect(fake.calls[0]?.args[0]).toMatchObject({ name: 'blue', driver: '', subnet: '', gateway: '', ipRange: '' });
  });

  it('rejects an invalid request before calling the manager, with exit 1', async () => {
    const r = await ctmgr(fake, ['network', 'create', '--gateway', '10.0.0.1', 'blue']);
    expect(r).toMatchObject({ code: 1, out: '', err: 'ctmgr: --gateway needs --subnet; give the subnet it belongs to\n' });
    expect(fake.calls).toEqual([]);
  });

  it('rejects a malformed --label with exit 1', async () => {
    const r = await ctmgr(fake, ['network', 'create', '--label', 'novalue', 'blue']);
    expect(r.code).toBe(1);
    expect(r.err).toBe('ctmgr: --label "novalue" is not of the form key=value\n');
  });

  it('rejects an unknown driver', async () => {
    const r = await ctmgr(fake, ['network', 'create', '-d', 'ipvlan', 'blue']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^ctmgr: unknown driver "ipvlan"; use one of overlay, bridge, macvlan\n$/);
  });

  it('is a usage error (exit 2) without NAME, with an unknown flag, or with two names', async () => {
    for (const argv of [
      ['network', 'create'],
      ['network', 'create', '--bogus', 'blue'],
      ['network', 'create', 'blue', 'red'],
      ['network', 'create', 'blue', '--subnet'],
    ]) {
      const r = await ctmgr(fake, argv);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.err.split('\n')).toHaveLength(2); // one line plus the final newline
      expect(r.err).toMatch(/^ctmgr: .*; run "ctmgr network create --help" for usage\n$/);
    }
    expect(fake.calls).toEqual([]);
  });

  it('prints the manager error as one line with exit 1', async () => {
    fake.failures.set(
      'createNetwork',
      new CtnetError(ErrorCode.AlreadyExists, 'network "blue" already exists; pick another name or remove it first'),
    );
    const r = await ctmgr(fake, ['network', 'create', 'blue']);
    expect(r).toMatchObject({
      code: 1,
      out: '',
      err: 'ctmgr: network "blue" already exists; pick another name or remove it first\n',
    });
  });

  it('prints help with -h and makes no call', async () => {
    const r = await ctmgr(fake, ['network', 'create', '-h']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: {2}ctmgr \[--manager ADDR\] network create \[OPTIONS\] NAME\n/);
    expect(r.out).toMatch(/ --aux-address NAME=IP +Reserve an address so it is never allocated \(repeatable\)/);
    expect(fake.calls).toEqual([]);
  });
});

describe('ctmgr network ls', () => {
  beforeEach(() => {
    fake.networks = [
      { network: wireNetwork({ id: 'bbbbbbbbbbbbbbbbbb', name: 'red', driver: 'bridge', vni: 0, subnet: '10.30.0.0/16' }), endpoints: 0 },
      { network: wireNetwork(), endpoints: 2 },
    ];
  });

  it('prints an aligned table sorted by name', async () => {
    const r = await ctmgr(fake, ['network', 'ls']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      [
        'NETWORK ID     NAME   DRIVER    SUBNET         VNI    ENDPOINTS',
        '3f2a9c1d5e7b   blue   overlay   10.10.0.0/24   4097   2',
        'bbbbbbbbbbbb   red    bridge    10.30.0.0/16   -      0',
        '',
      ].join('\n'),
    );
  });

  it('prints JSON with --format json', async () => {
    const r = await ctmgr(fake, ['network', 'list', '--format', 'json']);
    const parsed = JSON.parse(r.out) as { name: string; endpointCount: number; id: string }[];
    expect(parsed.map((n) => [n.name, n.endpointCount])).toEqual([['blue', 2], ['red', 0]]);
    expect(parsed[0]?.id).toBe(wireNetwork().id);
  });

  it('rejects an unknown format with exit 2', async () => {
    const r = await ctmgr(fake, ['network', 'ls', '--format', 'yaml']);
    expect(r).toMatchObject({ code: 2, out: '' });
    expect(r.err).toBe('ctmgr: unknown --format "yaml"; use table or json; run "ctmgr network ls --help" for usage\n');
    expect(fake.calls).toEqual([]);
  });
});

describe('ctmgr network inspect', () => {
  beforeEach(() => {
    fake.networkDetails.set('blue', {
      network: wireNetwork(),
      usage: { total: 253, allocated: 1, free: 252 },
      endpoints: [wireEndpoint()],
    });
  });

  it('prints a JSON array like docker inspect', async () => {
    const r = await ctmgr(fake, ['network', 'inspect', 'blue']);
    expect(r.code).toBe(0);
    const [net, ...rest] = JSON.parse(r.out) as Record<string, unknown>[];
    expect(rest).toEqual([]);
    expect(net).toMatchObject({ name: 'blue', vni: 4097, ipamUsage: { total: 253, allocated: 1, free: 252 } });
    expect(net?.endpoints).toHaveLength(1);
  });

  it('prints what it found and one error line per missing name, exit 1', async () => {
    const r = await ctmgr(fake, ['network', 'inspect', 'nope', 'blue']);
    expect(r.code).toBe(1);
    expect((JSON.parse(r.out) as { name: string }[]).map((n) => n.name)).toEqual(['blue']);
    expect(r.err).toBe('ctmgr: network "nope" not found; list networks with "ctmgr network ls"\n');
  });

  it('prints a human summary with --format table', async () => {
    const r = await ctmgr(fake, ['network', 'inspect', '--format', 'table', 'blue']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('IPAM:           1 allocated, 252 free of 253\n');
    expect(() => JSON.parse(r.out)).toThrow();
  });
});

describe('ctmgr network rm', () => {
  it('removes each name, reports failures on stderr and exits 1 if any failed', async () => {
    fake.failures.set(
      'removeNetwork:red',
      new CtnetError(ErrorCode.FailedPrecondition, 'network "red" has 2 endpoints; remove them first (ctmgr endpoint ls --network red)'),
    );
    const r = await ctmgr(fake, ['network', 'rm', 'blue', 'red', 'green']);
    expect(r.code).toBe(1);
    expect(r.out).toBe('blue\ngreen\n');
    expect(r.err).toBe('ctmgr: network "red" has 2 endpoints; remove them first (ctmgr endpoint ls --network red)\n');
    expect(fake.calls.map((c) => c.args[0])).toEqual(['blue', 'red', 'green']);
  });

  it('exits 0 when all are removed', async () => {
    const r = await ctmgr(fake, ['network', 'remove', 'blue']);
    expect(r).toMatchObject({ code: 0, out: 'blue\n', err: '' });
  });
});

describe('ctmgr network connect / disconnect', () => {
  it('connects with a static address and aliases, printing the address', async () => {
    const r = await ctmgr(fake, ['network', 'connect', '--ip', '10.20.0.9', '--alias', 'db', 'other', 'c1']);
    expect(r.code).toBe(0);
    expect(fake.calls).toEqual([{ method: 'connectNetwork', args: [{ network: 'other', container: 'c1', ip: '10.20.0.9', aliases: ['db'] }] }]);
  });

  it('disconnects and prints the released address; wants exactly NETWORK CONTAINER', async () => {
    expect(await ctmgr(fake, ['network', 'disconnect', 'other', 'c1'])).toMatchObject({ code: 0, out: '10.10.0.9\n' });
    const usage = await ctmgr(fake, ['network', 'disconnect', 'other']);
    expect(usage.code).toBe(2);
  });
});
