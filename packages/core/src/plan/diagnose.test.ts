import { describe, expect, it } from 'vitest';
import { desiredHost, type ClusterState } from '../desired/host.js';
import type { Container } from '../model/container.js';
import type { Endpoint } from '../model/endpoint.js';
import type { Network } from '../model/network.js';
import type { Node } from '../model/node.js';
import type { NftTable } from '../policy/nft.js';
import type { ActualHost } from './actual.js';
import { diagnoseHost, formatDiagnosis, type DiagnoseInput } from './diagnose.js';

const net: Network = {
  id: 'aaaaaaaa11112222', name: 'app', driver: 'overlay', vni: 4096, subnet: '10.10.0.0/24', gateway: '10.10.0.1',
  ipRange: '10.10.0.0/24', auxAddresses: {}, attachable: false, internal: false, mtu: 0, parent: '', options: {}, labels: {}, createdAt: '',
};
const node = (name: string, addr: string): Node => ({ name, addr, hostname: name, labels: {}, routes: [], registeredAt: '' });
const ep = (name: string, nodeName: string, ip: string, container = ''): Endpoint => ({
  id: `${name}-id-0000`, networkId: net.id, name, node: nodeName, ip, mac: `02:42:0a:0a:00:${ip.split('.')[3]!.padStart(2, '0')}`,
  aliases: [], createdAt: '', container,
});
const ctr: Container = { id: 'cccccccc9999', name: 'web', node: 'h1', cmd: ['sleep', '1'], env: {}, hostname: 'web', dns: [], dnsSearch: [], createdAt: '' };
const cluster: ClusterState = {
  networks: new Map([[net.id, net]]),
  nodes: new Map([['h1', node('h1', '192.168.1.1')], ['h2', node('h2', '192.168.1.2')], ['h3', node('h3', '192.168.1.3')]]),
  endpoints: new Map([ep('web', 'h1', '10.10.0.2', ctr.id), ep('db', 'h2', '10.10.0.3'), ep('cache', 'h3', '10.10.0.4')].map((e) => [`${e.networkId}/${e.name}`, e])),
  containers: new Map([['web', ctr]]),
};
const desired = desiredHost(cluster, { node: 'h1', advertiseAddr: '192.168.1.1', underlayMtu: 1500, vxlanPort: 4789 }, 'ctns-');

const converged = (): ActualHost => ({
  links: [
    { name: 'ctbr-aaaaaaaa', kind: 'bridge', mtu: 1450, up: true, mac: '02:42:0a:0a:00:01' },
    { name: 'ctvx-aaaaaaaa', kind: 'vxlan', mtu: 1450, up: true, mac: 'y', master: 'ctbr-aaaaaaaa', vxlan: { vni: 4096, port: 4789, local: '192.168.1.1', learning: false, proxy: true } },
    { name: 'ctve-web-id-0', kind: 'veth', mtu: 1450, up: true, mac: 'z', master: 'ctbr-aaaaaaaa' },
  ],
  addrs: [{ dev: 'ctbr-aaaaaaaa', cidr: '10.10.0.1/24' }],
  fdb: [
    { dev: 'ctvx-aaaaaaaa', mac: '02:42:0a:0a:00:03', dst: '192.168.1.2', permanent: true },
    { dev: 'ctvx-aaaaaaaa', mac: '02:42:0a:0a:00:04', dst: '192.168.1.3', permanent: true },
  ],
  neigh: [
    { dev: 'ctvx-aaaaaaaa', ip: '10.10.0.3', mac: '02:42:0a:0a:00:03', permanent: true },
    { dev: 'ctvx-aaaaaaaa', ip: '10.10.0.4', mac: '02:42:0a:0a:00:04', permanent: true },
  ],
});
const table: NftTable = { family: 'ip', name: 'ctnet', chains: [] };

const input = (over: Partial<DiagnoseInput> = {}): DiagnoseInput => ({
  node: 'h1',
  at: '2026-12-02T00:00:00.000Z',
  desired,
  actual: converged(),
  networkNames: new Map([[net.id, 'app']]),
  netns: new Set(['ctns-cccccccc']),
  tables: [{ desired: table, actual: { chains: new Map() } }],
  revision: { state: 10, applied: 10 },
  manager: '10.0.0.1:4700',
  lastReconcile: { at: '2026-12-02T00:00:00.000Z', reason: 'resync', ms: 12 },
  driftRepairs: 0,
  ...over,
});

describe('diagnoseHost', () => {
  it('finds nothing wrong on a converged host', () => {
    const d = diagnoseHost(input());
    expect(d.ok).toBe(true);
    expect(d.pending).toEqual([]);
    expect(d.networks).toEqual([
      expect.objectContaining({
        network: 'app',
        devices: [
          { name: 'ctbr-aaaaaaaa', kind: 'bridge', state: 'ok' },
          { name: 'ctvx-aaaaaaaa', kind: 'vxlan', state: 'ok' },
        ],
        gateway: { cidr: '10.10.0.1/24', present: true },
        fdb: { desired: 2, present: 2, missing: [], unexpected: [], unexpectedCount: 0 },
        neigh: { desired: 2, present: 2, missing: [], unexpected: [], unexpectedCount: 0 },
        sandboxes: [{ name: 'web', netns: 'ctns-cccccccc', present: true }],
      }),
    ]);
    expect(formatDiagnosis(d)).toMatch(/^node h1: OK/);
  });

  it('names each missing or stray entry, a missing device and a namespace gone, and is not ok', () => {
    const actual = converged();
    const d = diagnoseHost(
      input({
        actual: {
          ...actual,
          links: actual.links.filter((l) => l.name !== 'ctbr-aaaaaaaa'),
          fdb: actual.fdb.slice(1),
          neigh: [...actual.neigh, { dev: 'ctvx-aaaaaaaa', ip: '10.10.0.9', mac: '02:42:0a:0a:00:09', permanent: true }],
        },
        netns: new Set(),
        tables: [{ desired: { ...table, chains: [{ name: 'fwd', rules: ['accept'] }] }, actual: undefined }],
        manager: undefined,
      }),
    );
    expect(d.ok).toBe(false);
    const n = d.networks[0]!;
    expect(n.devices[0]).toEqual({ name: 'ctbr-aaaaaaaa', kind: 'bridge', state: 'missing' });
    expect(n.fdb).toEqual({ desired: 2, present: 1, missing: ['02:42:0a:0a:00:03 -> 192.168.1.2'], unexpected: [], unexpectedCount: 0 });
    expect(n.neigh).toEqual({ desired: 2, present: 2, missing: [], unexpected: ['10.10.0.9'], unexpectedCount: 1 });
    expect(n.sandboxes).toEqual([{ name: 'web', netns: 'ctns-cccccccc', present: false }]);
    expect(d.nftables).toEqual([{ table: 'ctnet', netns: '', hash: expect.stringMatching(/^[0-9a-f]{8}$/), inSync: false }]);
    expect(d.pending).toContain('fdb-replace dev=ctvx-aaaaaaaa mac=02:42:0a:0a:00:03 dst=192.168.1.2');
    const text = formatDiagnosis(d);
    expect(text).toMatch(/^node h1: NOT CONVERGED/);
    expect(text).toContain('manager      not connected');
    expect(text).toMatch(/bridge\s+ctbr-aaaaaaaa\s+missing/);
    expect(text).toContain('fdb     1/2 present; missing 1: 02:42:0a:0a:00:03 -> 192.168.1.2');
    expect(text).toContain('unexpected 1: 10.10.0.9');
    expect(text).toContain('without a namespace 1: web');
    expect(text).toMatch(/nftables: host ctnet [0-9a-f]{8} DIFFERS/);
  });

  it('keeps a report of a badly broken host bounded, with the counts', () => {
    const base = converged();
    const strays = Array.from({ length: 300 }, (_, i) => ({ dev: 'ctvx-aaaaaaaa', mac: `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`, dst: '192.168.1.9', permanent: true }));
    const d = diagnoseHost(input({ actual: { ...base, fdb: [...base.fdb, ...strays] } }));
    expect(d.networks[0]!.fdb!.unexpected).toHaveLength(100);
    expect(d.networks[0]!.fdb!.unexpectedCount).toBe(300);
    expect(d.pending).toHaveLength(100);
    expect(d.pendingCount).toBe(300);
    expect(formatDiagnosis(d)).toContain('unexpected 300: ');
    expect(formatDiagnosis(d)).toContain('… 295 more');
  });

  it('is not ok after a failed run, and says so', () => {
    const d = diagnoseHost(input({ lastReconcile: { at: 'x', reason: 'change', ms: 3, error: 'fdb-replace ctvx-aaaaaaaa: boom' } }));
    expect(d.ok).toBe(false);
    expect(formatDiagnosis(d)).toContain('error: fdb-replace ctvx-aaaaaaaa: boom');
  });
});
