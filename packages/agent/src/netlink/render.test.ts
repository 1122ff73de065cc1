import { describe, expect, it } from 'vitest';
import { ErrorCode, isCtnetError, type KernelOp } from '@ctnet/core';
import { renderBridgeBatch, renderBridgeOp, renderIpBatch, renderIpOp } from './render.js';

describe('renderIpOp', () => {
  it.each<[KernelOp, string[]]>([
    [{ op: 'bridge-add', name: 'ctbr-1', mtu: 1450 }, ['link add dev ctbr-1 mtu 1450 type bridge']],
    [
      { op: 'vxlan-add', name: 'ctvx-1', vni: 4242, port: 4789, local: '192.0.2.1', mtu: 1450 },
      ['link add dev ctvx-1 mtu 1450 type vxlan id 4242 dstport 4789 local 192.0.2.1 nolearning proxy'],
    ],
    [{ op: 'link-set', name: 'ctvx-1', mtu: 1400, master: 'ctbr-1', up: true }, ['link set dev ctvx-1 mtu 1400 master ctbr-1 up']],
    [{ op: 'link-set', name: 'ctbr-1', up: false }, ['link set dev ctbr-1 down']],
    [{ op: 'link-set', name: 'ctvx-1', vxlanFlags: true }, ['link set dev ctvx-1 type vxlan nolearning']],
    [
      { op: 'link-set', name: 'ctvx-1', up: true, vxlanFlags: true },
      ['link set dev ctvx-1 up', 'link set dev ctvx-1 type vxlan nolearning'],
    ],
    [{ op: 'link-del', name: 'ctvx-1' }, ['link del dev ctvx-1']],
    [{ op: 'addr-add', dev: 'ctbr-1', cidr: '10.10.0.1/24' }, ['addr add 10.10.0.1/24 dev ctbr-1']],
    [{ op: 'addr-del', dev: 'ctbr-1', cidr: '10.10.0.1/24' }, ['addr del 10.10.0.1/24 dev ctbr-1']],
    [
      { op: 'neigh-replace', dev: 'ctvx-1', ip: '10.10.0.2', mac: '02:42:0A:0A:00:02' },
      ['neigh replace 10.10.0.2 lladdr 02:42:0a:0a:00:02 dev ctvx-1 nud permanent'],
    ],
    [
      { op: 'neigh-del', dev: 'ctvx-1', ip: '10.10.0.2' },
      ['neigh replace 10.10.0.2 dev ctvx-1 nud failed', 'neigh del 10.10.0.2 dev ctvx-1'],
    ],
  ])('%j', (op, lines) => {
    expect(renderIpOp(op)).toEqual(lines);
  });

  it('never asks the kernel to change the VXLAN proxy flag (it refuses any PROXY in a changelink)', () => {
    expect(renderIpOp({ op: 'link-set', name: 'ctvx-1', vxlanFlags: true }).join('\n')).not.toMatch(/proxy/);
  });

  it('puts every device name after an explicit keyword, so names like "up" or "h" are not read as keywords', () => {
    expect(renderIpOp({ op: 'link-set', name: 'up', master: 'h', up: true })).toEqual(['link set dev up master h up']);
    expect(renderIpOp({ op: 'link-del', name: 'h' })).toEqual(['link del dev h']);
  });

  it('refuses a link-set that changes nothing, and bridge ops', () => {
    expect(() => renderIpOp({ op: 'link-set', name: 'ctbr-1' })).toThrow(/changes nothing/);
    expect(() => renderIpOp({ op: 'fdb-del', dev: 'ctvx-1', mac: '02:42:0a:0a:00:02' })).toThrow(/bridge op/);
  });
});

describe('renderBridgeOp', () => {
  it('renders permanent self entries with their VTEP, and deletes with or without dst', () => {
    expect(renderBridgeOp({ op: 'fdb-replace', dev: 'ctvx-1', mac: '02:42:0a:0a:00:02', dst: '192.0.2.2' })).toBe(
      'fdb replace 02:42:0a:0a:00:02 dev ctvx-1 dst 192.0.2.2 self permanent',
    );
    expect(renderBridgeOp({ op: 'fdb-del', dev: 'ctvx-1', mac: '02:42:0a:0a:00:02', dst: '192.0.2.2' })).toBe(
      'fdb del 02:42:0a:0a:00:02 dev ctvx-1 dst 192.0.2.2 self',
    );
    expect(renderBridgeOp({ op: 'fdb-del', dev: 'ctvx-1', mac: '02:42:0a:0a:00:02' })).toBe('fdb del 02:42:0a:0a:00:02 dev ctvx-1 self');
  });

  it('refuses ip ops', () => {
    expect(() => renderBridgeOp({ op: 'link-del', name: 'ctvx-1' })).toThrow(/ip op/);
  });
});

describe('batches', () => {
  it('are one line per rendered line, each ending in a newline', () => {
    expect(
      renderIpBatch([
        { op: 'bridge-add', name: 'ctbr-1', mtu: 1450 },
        { op: 'neigh-del', dev: 'ctvx-1', ip: '10.10.0.2' },
      ]),
    ).toBe('link add dev ctbr-1 mtu 1450 type bridge\nneigh replace 10.10.0.2 dev ctvx-1 nud failed\nneigh del 10.10.0.2 dev ctvx-1\n');
    expect(renderBridgeBatch([{ op: 'fdb-del', dev: 'ctvx-1', mac: '02:42:0a:0a:00:02' }])).toBe('fdb del 02:42:0a:0a:00:02 dev ctvx-1 self\n');
    expect(renderIpBatch([])).toBe('');
  });
});

describe('validation, so one bad value cannot corrupt or end a batch', () => {
  const bad: KernelOp[] = [
    { op: 'link-del', name: 'two words' },
    { op: 'link-del', name: 'a\nlink del b' },
    { op: 'link-del', name: 'x'.repeat(16) },
    { op: 'link-del', name: '' },
    { op: 'link-del', name: '-force' },
    { op: 'link-del', name: 'a#b' },
    { op: 'link-del', name: 'a/b' },
    { op: 'link-del', name: '..' },
    { op: 'bridge-add', name: 'ctbr-1', mtu: 1450.5 },
    { op: 'bridge-add', name: 'ctbr-1', mtu: 10 },
    { op: 'vxlan-add', name: 'ctvx-1', vni: 1 << 24, port: 4789, local: '192.0.2.1', mtu: 1450 },
    { op: 'vxlan-add', name: 'ctvx-1', vni: 1, port: 0, local: '192.0.2.1', mtu: 1450 },
    { op: 'vxlan-add', name: 'ctvx-1', vni: 1, port: 4789, local: '2001:db8::1', mtu: 1450 },
    { op: 'addr-add', dev: 'ctbr-1', cidr: '10.10.0.1' },
    { op: 'addr-add', dev: 'ctbr-1', cidr: '10.10.0.1/33' },
    { op: 'addr-add', dev: 'ctbr-1', cidr: '10.10.0.1/24 dev lo' },
    { op: 'neigh-replace', dev: 'ctvx-1', ip: '10.10.0.2', mac: '02:42:0a:0a:00' },
    { op: 'neigh-replace', dev: 'ctvx-1', ip: '10.10.0.256', mac: '02:42:0a:0a:00:02' },
  ];

  it.each(bad)('refuses %j with INVALID_ARGUMENT', (op) => {
    let caught: unknown;
    try {
      renderIpOp(op);
    } catch (err) {
      caught = err;
    }
    expect(isCtnetError(caught, ErrorCode.InvalidArgument)).toBe(true);
  });

  it('refuses a bad MAC or VTEP in fdb ops', () => {
    expect(() => renderBridgeOp({ op: 'fdb-replace', dev: 'ctvx-1', mac: 'zz:42:0a:0a:00:02', dst: '192.0.2.2' })).toThrow(/MAC/);
    expect(() => renderBridgeOp({ op: 'fdb-replace', dev: 'ctvx-1', mac: '02:42:0a:0a:00:02', dst: 'vtep1' })).toThrow(/IPv4/);
  });
});
