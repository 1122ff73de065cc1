import { CtnetError, ErrorCode } from '@ctnet/core';
import { beforeEach, describe, expect, it } from 'vitest';
import { ctmgr, FakeManager, wireEndpoint, wireNodeStatus } from '../testing/fake-manager.js';

let fake: FakeManager;
beforeEach(() => {
  fake = new FakeManager();
  fake.nodes = [
    wireNodeStatus('host2', { status: 'down', endpoints: 1, lag: 12, node: { ...wireNodeStatus('host2').node!, addr: '192.168.50.12' } }),
    wireNodeStatus('host1', { endpoints: 3 }),
  ];
});

describe('ctmgr node ls', () => {
  it('prints NAME, ADDRESS, STATUS, ENDPOINTS, LAG sorted by name', async () => {
    const r = await ctmgr(fake, ['node', 'ls']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toBe(
      [
        'NAME    ADDRESS         STATUS   ENDPOINTS   LAG',
        'host1   192.168.50.11   ready    3           0',
        'host2   192.168.50.12   down     1           12',
        '',
      ].join('\n'),
    );
  });

  it('prints a JSON array with --format=json', async () => {
    const r = await ctmgr(fake, ['node', 'ls', '--format=json']);
    const nodes = JSON.parse(r.out) as { name: string; status: string; lag: number; endpointCount: number }[];
    expect(nodes.map((n) => [n.name, n.status, n.lag, n.endpointCount])).toEqual([
      ['host1', 'ready', 0, 3],
      ['host2', 'down', 12, 1],
    ]);
  });

  it('takes no operands', async () => {
    const r = await ctmgr(fake, ['node', 'ls', 'host1']);
    expect(r.code).toBe(2);
    expect(r.err).toBe('ctmgr: "ctmgr node ls" takes no operands; unexpected "host1"; run "ctmgr node ls --help" for usage\n');
  });
});

describe('ctmgr node inspect', () => {
  beforeEach(() => {
    fake.nodeDetails.set('host1', { status: wireNodeStatus('host1', { endpoints: 1 }), endpoints: [wireEndpoint()] });
  });

  it('prints JSON by default', async () => {
    const r = await ctmgr(fake, ['node', 'inspect', 'host1']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject([{ name: 'host1', addr: '192.168.50.11', endpoints: [{ name: 'web' }] }]);
  });

  it('prints a summary with --format table', async () => {
    const r = await ctmgr(fake, ['node', 'inspect', '--format', 'table', 'host1']);
    expect(r.out).toContain('Status:      ready\n');
    expect(r.out).toContain('Lag:         0 (acked revision 40 at 2026-01-02T00:00:00Z)\n');
  });

  it('reports an unknown node on stderr with exit 1', async () => {
    const r = await ctmgr(fake, ['node', 'inspect', 'ghost']);
    expect(r).toMatchObject({ code: 1, out: '[]\n', err: 'ctmgr: node "ghost" not found\n' });
  });
});

describe('ctmgr node rm', () => {
  it('passes --force / -f through', async () => {
    await ctmgr(fake, ['node', 'rm', 'host1']);
    await ctmgr(fake, ['node', 'rm', '-f', 'host2']);
    await ctmgr(fake, ['node', 'rm', 'host3', '--force']);
    expect(fake.calls.map((c) => c.args)).toEqual([
      ['host1', false],
      ['host2', true],
      ['host3', true],
    ]);
  });

  it('prints the name removed, or the refusal as one line', async () => {
    fake.failures.set(
      'removeNode:host1',
      new CtnetError(ErrorCode.FailedPrecondition, 'node "host1" is ready; stop its agent first or use --force'),
    );
    const ok = await ctmgr(fake, ['node', 'rm', 'host2']);
    expect(ok).toMatchObject({ code: 0, out: 'host2\n', err: '' });
    const refused = await ctmgr(fake, ['node', 'rm', 'host1']);
    expect(refused).toMatchObject({ code: 1, out: '', err: 'ctmgr: node "host1" is ready; stop its agent first or use --force\n' });
  });
});
