import { describe, expect, it } from 'vitest';
import { isCtnetError, ErrorCode } from '@ctnet/core';
import { parseAddrs, parseFdb, parseLinks, parseNeigh } from './parse.js';
import { ADDRS_JSON, FDB_JSON, LINKS_JSON, NEIGH_JSON } from './testing/fixtures.js';

describe('parseLinks', () => {
  const links = parseLinks(LINKS_JSON);
  const byName = new Map(links.map((l) => [l.name, l]));

  it('reads every link, kind from linkinfo.info_kind and "" without linkinfo', () => {
    expect(links.map((l) => [l.name, l.kind])).toEqual([
      ['lo', ''],
      ['ctve-b1', 'veth'],
      ['ctve-a1', 'veth'],
      ['ctbr-1', 'bridge'],
      ['ctvx-1', 'vxlan'],
      ['ctvx-2', 'vxlan'],
    ]);
  });

  it('reads a VXLAN device: vni, port, local, learning off, proxy on, master, up', () => {
    expect(byName.get('ctvx-1')).toEqual({
      name: 'ctvx-1',
      kind: 'vxlan',
      mtu: 1450,
      master: 'ctbr-1',
      up: true,
      mac: 'e2:66:1f:f1:e0:30',
      vxlan: { vni: 4242, port: 4789, local: '192.0.2.1', learning: false, proxy: true },
    });
  });

  it('reads proxy as off when iproute2 leaves it out, and down from flags', () => {
    expect(byName.get('ctvx-2')).toMatchObject({ up: false, mtu: 1500, vxlan: { vni: 4243, learning: true, proxy: false } });
    expect(byName.get('ctvx-2')?.master).toBeUndefined();
  });

  it('takes "up" from IFF_UP in flags, not operstate (a device without carrier is still up)', () => {
    expect(byName.get('ctve-a1')?.up).toBe(true); // flags: NO-CARRIER,...,UP; operstate LOWERLAYERDOWN
    expect(byName.get('ctve-b1')?.up).toBe(false);
    expect(byName.get('ctbr-1')).toMatchObject({ kind: 'bridge', mtu: 1450, up: true });
    expect(byName.get('ctbr-1')?.vxlan).toBeUndefined();
  });

  it('tolerates missing fields and skips entries without a name', () => {
    const text = JSON.stringify([{ ifindex: 9 }, { ifname: 'x' }, { ifname: 'v', linkinfo: { info_kind: 'vxlan' } }, 7, null]);
    expect(parseLinks(text)).toEqual([
      { name: 'x', kind: '', mtu: 0, up: false, mac: '' },
      { name: 'v', kind: 'vxlan', mtu: 0, up: false, mac: '', vxlan: { vni: -1, port: -1, local: '', learning: true, proxy: false } },
    ]);
  });
});

describe('parseAddrs', () => {
  it('keeps IPv4 addresses as address/prefix and drops IPv6 ones', () => {
    expect(parseAddrs(ADDRS_JSON)).toEqual([
      { dev: 'lo', cidr: '127.0.0.1/8' },
      { dev: 'ctve-a1', cidr: '192.0.2.1/24' },
      { dev: 'ctbr-1', cidr: '10.10.0.1/24' },
    ]);
  });
});

describe('parseFdb', () => {
  const fdb = parseFdb(FDB_JSON);

  it('reads VXLAN entries with their VTEP, one entry per remote of a MAC', () => {
    expect(fdb.filter((e) => e.dev === 'ctvx-1')).toEqual([
      { dev: 'ctvx-1', mac: '02:42:0a:0a:00:14', dst: '192.0.2.4', permanent: true },
      { dev: 'ctvx-1', mac: '02:42:0a:0a:00:09', dst: '192.0.2.9', permanent: false }, // dynamic: state ""
      { dev: 'ctvx-1', mac: '00:00:00:00:00:00', dst: '192.0.2.2', permanent: true },
      { dev: 'ctvx-1', mac: '00:00:00:00:00:00', dst: '192.0.2.3', permanent: true },
      { dev: 'ctvx-1', mac: '02:42:0a:0a:00:02', dst: '192.0.2.2', permanent: true },
    ]);
  });

  it("leaves out the bridge's own entries (master, not self): fdb del ... self cannot remove them", () => {
    expect(fdb.some((e) => e.mac === 'e2:66:1f:f1:e0:30')).toBe(false);
  });

  it('keeps devices\' own multicast entries, without dst', () => {
    expect(fdb).toContainEqual({ dev: 'ctbr-1', mac: '01:00:5e:00:00:6a', permanent: true });
  });

  it('drops IPv6 VTEPs, reads state as a list too, lower-cases MACs', () => {
    const text = JSON.stringify([
      { mac: 'AA:BB:CC:00:00:01', ifname: 'vx', dst: '2001:db8::1', flags: ['self'], state: 'permanent' },
      { mac: 'AA:BB:CC:00:00:02', ifname: 'vx', dst: '10.0.0.2', flags: ['self'], state: ['permanent'] },
      { mac: 'aa:bb:cc:00:00:03', ifname: 'vx', dst: '10.0.0.3', state: 'static' },
      { ifname: 'vx' },
    ]);
    expect(parseFdb(text)).toEqual([
      { dev: 'vx', mac: 'aa:bb:cc:00:00:02', dst: '10.0.0.2', permanent: true },
      { dev: 'vx', mac: 'aa:bb:cc:00:00:03', dst: '10.0.0.3', permanent: false },
    ]);
  });
});

describe('parseNeigh', () => {
  it('reads IPv4 neighbours with PERMANENT from the state list, lladdr only when present, and drops IPv6', () => {
    expect(parseNeigh(NEIGH_JSON)).toEqual([
      { dev: 'ctvx-1', ip: '10.10.0.4', permanent: false },
      { dev: 'ctvx-1', ip: '10.10.0.20', mac: '02:42:0a:0a:00:14', permanent: true },
      { dev: 'ctve-a1', ip: '192.0.2.3', permanent: false },
      { dev: 'ctvx-1', ip: '10.10.0.2', mac: '02:42:0a:0a:00:02', permanent: true },
      { dev: 'ctve-a1', ip: '192.0.2.2', permanent: false },
      { dev: 'ctvx-1', ip: '10.10.0.3', mac: '02:42:0a:0a:00:03', permanent: false },
    ]);
  });
});

describe('every parser', () => {
  const parsers = { parseLinks, parseAddrs, parseFdb, parseNeigh };

  it.each(Object.entries(parsers))('%s reads empty output and "[]" as nothing', (_, parse) => {
    expect(parse('')).toEqual([]);
    expect(parse('  \n')).toEqual([]);
    expect(parse('[]\n')).toEqual([]);
  });

  it.each(Object.entries(parsers))('%s refuses output that is not a JSON list, naming the command', (_, parse) => {
    for (const text of ['Object "neigh" is unknown', '{"a":1}']) {
      let caught: unknown;
      try {
        parse(text);
      } catch (err) {
        caught = err;
      }
      expect(isCtnetError(caught, ErrorCode.Internal)).toBe(true);
      expect((caught as Error).message).toMatch(/ -j /);
    }
  });
});
