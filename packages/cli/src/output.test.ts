import { describe, expect, it } from 'vitest';
import {
  endpointTable,
  formatFields,
  formatJson,
  formatPairs,
  formatTable,
  networkDetailView,
  networkSummary,
  networkTable,
  nodeDetailView,
  nodeTable,
} from './output.js';
import { wireEndpoint, wireNetwork, wireNodeStatus } from './testing/fake-manager.js';

describe('formatTable', () => {
  it('pads each column to its widest cell, three spaces apart, without trailing spaces', () => {
    const text = formatTable(
      ['A', 'LONG HEADER', 'C'],
      [
        ['wide cell', 'x', ''],
        ['y', 'z', 'last'],
      ],
    );
    expect(text).toBe(['A           LONG HEADER   C', 'wide cell   x', 'y           z             last', ''].join('\n'));
  });

  it('prints only the header when there are no rows', () => {
    expect(formatTable(['NAME', 'ID'], [])).toBe('NAME   ID\n');
  });
});

describe('networkTable', () => {
  it('shortens ids to 12 characters, shows "-" for a missing VNI and aligns long names', () => {
    const text = networkTable([
      { network: wireNetwork(), endpoints: 3 },
      {
        network: wireNetwork({ id: 'ab'.repeat(16), name: 'a-rather-long-name', driver: 'bridge', vni: 0, subnet: '172.30.0.0/16' }),
        endpoints: 0,
      },
    ]);
    const lines = text.trimEnd().split('\n');
    expect(lines).toEqual([
      'NETWORK ID     NAME                 DRIVER    SUBNET          VNI    ENDPOINTS',
      '3f2a9c1d5e7b   blue                 overlay   10.10.0.0/24    4097   3',
      'abababababab   a-rather-long-name   bridge    172.30.0.0/16   -      0',
    ]);
  });
});

describe('nodeTable and endpointTable', () => {
  it('lists nodes with status, endpoint count and lag', () => {
    const text = nodeTable([wireNodeStatus('host1', { endpoints: 2 }), wireNodeStatus('h2', { status: 'down', lag: 7 })]);
    expect(text).toBe(
      [
        'NAME    ADDRESS         STATUS   ENDPOINTS   LAG',
        'host1   192.168.50.11   ready    2           0',
        'h2      192.168.50.11   down     0           7',
        '',
      ].join('\n'),
    );
  });

  it('names the network through the lookup and joins aliases', () => {
    const text = endpointTable([wireEndpoint({ aliases: ['www', 'api'] })], () => 'blue');
    expect(text.split('\n')[1]).toBe('e1e2e3e4e5e6   web    blue      host1   10.10.0.2   02:42:0a:0a:00:02   www,api');
  });
});

describe('JSON views', () => {
  it('network inspect carries settings, IPAM usage and endpoints, with sorted maps', () => {
    const view = networkDetailView({
      network: wireNetwork({ labels: { zeta: '1', alpha: '2' }, auxAddresses: { router: '10.10.0.250' }, mtu: 1400 }),
      usage: { total: 253, allocated: 2, free: 251 },
      endpoints: [wireEndpoint()],
    });
    expect(Object.keys(view.labels)).toEqual(['alpha', 'zeta']);
    expect(view).toMatchObject({
      name: 'blue',
      driver: 'overlay',
      vni: 4097,
      subnet: '10.10.0.0/24',
      gateway: '10.10.0.1',
      ipRange: '10.10.0.0/24',
      mtu: 1400,
      internal: false,
      attachable: false,
      auxAddresses: { router: '10.10.0.250' },
      ipamUsage: { total: 253, allocated: 2, free: 251 },
      endpoints: [{ name: 'web', ip: '10.10.0.2', node: 'host1', networkId: wireNetwork().id }],
    });
  });

  it('node inspect replaces the endpoint count by the endpoint list', () => {
    const view = nodeDetailView({ status: wireNodeStatus('host1', { endpoints: 1, lag: 3 }), endpoints: [wireEndpoint()] });
    expect(view).not.toHaveProperty('endpointCount');
    expect(view).toMatchObject({ name: 'host1', status: 'ready', lag: 3, endpoints: [{ name: 'web' }] });
  });

  it('formatJson is indented and ends with a newline', () => {
    expect(formatJson([{ a: 1 }])).toBe('[\n  {\n    "a": 1\n  }\n]\n');
  });
});

describe('human inspect', () => {
  it('aligns field values and indents the endpoint table', () => {
    const text = networkSummary({
      network: wireNetwork({ labels: { env: 'dev' } }),
      usage: { total: 253, allocated: 1, free: 252 },
      endpoints: [wireEndpoint()],
    });
    const lines = text.split('\n');
    expect(lines).toContain('Name:           blue');
    expect(lines).toContain('Labels:         env=dev');
    expect(lines).toContain('IPAM:           1 allocated, 252 free of 253');
    expect(lines).toContain('MTU:            default');
    expect(lines.some((l) => l.startsWith('  ENDPOINT ID'))).toBe(true);
    expect(lines.some((l) => /^ {2}e1e2e3e4e5e6 +web +blue +host1/.test(l))).toBe(true);
  });

  it('a bridge network shows its pool, each host\'s subnet and gateway, and the problems hosts report', () => {
    const text = networkSummary({
      network: wireNetwork({ driver: 'bridge', vni: 0, subnet: '172.17.0.0/16', gateway: '', ipRange: '172.17.0.0/16', hostSubnets: { h2: '172.17.1.0/24', h1: '172.17.0.0/24' } }),
      usage: { total: 506, allocated: 0, free: 506 },
      endpoints: [],
      problems: { h3: 'parent interface eth9 … does not exist on node h3' },
    });
    const lines = text.split('\n');
    expect(lines).toContain('Scope:          local (every node, a subnet each)');
    expect(lines).toContain('Pool:           172.17.0.0/16');
    expect(lines).toContain('Gateway:        -');
    expect(lines).toContain('Host subnets:   h1 172.17.0.0/24 (gateway 172.17.0.1), h2 172.17.1.0/24 (gateway 172.17.1.1)');
    expect(lines).toContain('Problem on h3:  parent interface eth9 … does not exist on node h3');
  });

  it('formatFields and formatPairs', () => {
    expect(formatFields([['A', '1'], ['Long', '']])).toBe('A:     1\nLong:\n');
    expect(formatPairs({ b: '2', a: '1' })).toBe('a=1, b=2');
    expect(formatPairs({})).toBe('-');
  });
});
