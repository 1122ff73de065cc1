import { beforeEach, describe, expect, it } from 'vitest';
import { ctmgr, FakeManager, wireEndpoint, wireNetwork } from '../testing/fake-manager.js';

let fake: FakeManager;
beforeEach(() => {
  fake = new FakeManager();
});

describe('ctmgr endpoint create', () => {
  it('sends network, node, name, ip, mac and aliases, and prints the id', async () => {
    const r = await ctmgr(fake, [
      'endpoint', 'create', '--network', 'blue', '--node', 'host1', '--ip', '10.10.0.9',
      '--mac', '02:42:0a:0a:00:09', '--alias', 'www', '--alias', 'api', 'web',
    ]);
    expect(r).toMatchObject({ code: 0, out: 'ep0123456789\n', err: '' });
    expect(fake.calls).toEqual([
      {
        method: 'createEndpoint',
        args: [{ network: 'blue', node: 'host1', name: 'web', ip: '10.10.0.9', mac: '02:42:0a:0a:00:09', aliases: ['www', 'api'], origin: '' }],
      },
    ]);
  });

  it('requires --network and --node (usage errors)', async () => {
    const noNet = await ctmgr(fake, ['endpoint', 'create', '--node', 'host1', 'web']);
    expect(noNet.code).toBe(2);
    expect(noNet.err).toBe('ctmgr: "ctmgr endpoint create" needs --network; run "ctmgr endpoint create --help" for usage\n');
    const noNode = await ctmgr(fake, ['endpoint', 'create', '--network', 'blue', 'web']);
    expect(noNode.code).toBe(2);
    expect(noNode.err).toContain('needs --node');
    expect(fake.calls).toEqual([]);
  });

  it('rejects a multicast MAC before calling the manager', async () => {
    const r = await ctmgr(fake, ['endpoint', 'create', '--network', 'blue', '--node', 'host1', '--mac', '01:00:5e:00:00:01', 'web']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^ctmgr: MAC address "01:00:5e:00:00:01" is a multicast address; .*\n$/);
    expect(fake.calls).toEqual([]);
  });
});

describe('ctmgr endpoint ls', () => {
  beforeEach(() => {
    fake.networks = [{ network: wireNetwork(), endpoints: 2 }];
    fake.endpoints = [
      wireEndpoint({ id: 'ffff00000000aaaa', name: 'web', aliases: ['www'] }),
      wireEndpoint({ id: 'cccc00000000bbbb', name: 'db', node: 'host2', ip: '10.10.0.3', mac: '02:42:0a:0a:00:03', networkId: 'unknown0123456789' }),
    ];
  });

  it('passes the filters and prints a table with network names', async () => {
    const r = await ctmgr(fake, ['endpoint', 'ls', '--network', 'blue', '--node', 'host1']);
    expect(r.code).toBe(0);
    expect(fake.calls[0]).toEqual({ method: 'listEndpoints', args: [{ network: 'blue', node: 'host1' }] });
    expect(r.out).toBe(
      [
        'ENDPOINT ID    NAME   NETWORK        NODE    IP          MAC                 ALIASES',
        'cccc00000000   db     unknown01234   host2   10.10.0.3   02:42:0a:0a:00:03   -',
        'ffff00000000   web    blue           host1   10.10.0.2   02:42:0a:0a:00:02   www',
        '',
      ].join('\n'),
    );
  });

  it('sends empty filters by default and prints JSON without looking up networks', async () => {
    const r = await ctmgr(fake, ['endpoint', 'ls', '--format', 'json']);
    expect(fake.calls).toEqual([{ method: 'listEndpoints', args: [{ network: '', node: '' }] }]);
    expect((JSON.parse(r.out) as { name: string }[]).map((e) => e.name)).toEqual(['db', 'web']);
  });
});

describe('ctmgr endpoint rm', () => {
  it('deletes from the given network and prints the names', async () => {
    const r = await ctmgr(fake, ['endpoint', 'rm', '--network', 'blue', 'web', 'db']);
    expect(r).toMatchObject({ code: 0, out: 'web\ndb\n' });
    expect(fake.calls.map((c) => c.args)).toEqual([
      ['blue', 'web'],
      ['blue', 'db'],
    ]);
  });

  it('requires --network', async () => {
    const r = await ctmgr(fake, ['endpoint', 'rm', 'web']);
    expect(r.code).toBe(2);
    expect(fake.calls).toEqual([]);
  });
});
