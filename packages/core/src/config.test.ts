import { describe, it, expect } from 'vitest';
import { expectInvalid } from './testing/expect-invalid.js';
import { CtnetError, ErrorCode } from './errors.js';
import { parseCidr } from './net/ipv4.js';
import { formatHostPort, parseDuration, parseHostPort, parseManagerConfig, parsePort } from './config.js';


describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    ['0.25m', 15_000],
    ['45', 45_000],
    [' 10s ', 10_000],
    ['0s', 0],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text, '--node-grace')).toBe(ms);
  });

  it.each(['', 's', '10x', '10 s', '-1s', '1d', '10S', '1e3ms', '.5s'])('rejects %j', (text) => {
    expectInvalid(() => parseDuration(text, '--node-grace'), `--node-grace "${text}" is not a duration`);
  });
});

describe('parseHostPort / formatHostPort', () => {
  it.each([
    ['0.0.0.0:4700', '0.0.0.0', 4700],
    ['localhost:1', 'localhost', 1],
    ['etcd-1.lab:65535', 'etcd-1.lab', 65535],
    [' 127.0.0.1:4701 ', '127.0.0.1', 4701],
  ])('parses %j', (text, host, port) => {
    const hp = parseHostPort(text, '--listen');
    expect(hp).toEqual({ host, port });
    expect(formatHostPort(hp)).toBe(text.trim());
  });

  it.each(['4700', ':4700', '0.0.0.0:', '0.0.0.0:0', '0.0.0.0:65536', '0.0.0.0:http', 'host:-1'])(
    'rejects %j as not host:port',
    (text) => {
      expectInvalid(() => parseHostPort(text, '--listen'), `--listen "${text}" is not host:port`);
    },
  );

  it('rejects a host with invalid characters', () => {
    expectInvalid(() => parseHostPort('bad_host:80', '--http'), '--http "bad_host:80" has an invalid host "bad_host"');
    expectInvalid(() => parseHostPort('[::1]:80', '--http'), /has an invalid host "\[::1\]"/);
  });
});

describe('parsePort', () => {
  it('accepts 1 to 65535', () => {
    expect(parsePort('1', '--vxlan-port')).toBe(1);
    expect(parsePort('65535', '--vxlan-port')).toBe(65535);
  });

  it.each(['0', '65536', '', 'abc', '47.89', '-1'])('rejects %j', (text) => {
    expectInvalid(() => parsePort(text, '--vxlan-port'), `--vxlan-port "${text}" is not a port`);
  });
});

describe('parseManagerConfig', () => {
  it('fills in the defaults', () => {
    expect(parseManagerConfig({})).toEqual({
      listen: { host: '0.0.0.0', port: 4700 },
      http: { host: '127.0.0.1', port: 4701 },
      etcdEndpoints: [],
      dataDir: '/var/lib/ctnet',
      defaultAddrPools: [parseCidr('10.0.0.0/8')],
      defaultAddrPoolSize: 24,
      defaultBridgePool: { base: 0xac110000, prefix: 16 },
      vxlanPort: 4789,
      excludes: [],
      nodeGraceMs: 30_000,
      nodeRetentionMs: 86_400_000,
      nodeTtlSeconds: 10,
      embeddedEtcdPort: 23790,
      streamBufferEvents: 250_000,
      nodeCertTtlMs: 86_400_000,
    });
  });

  it('takes https etcd endpoints with a CA and a client certificate, and names what is missing', () => {
    expect(parseManagerConfig({ etcdEndpoints: 'https://10.0.0.5:2379', etcdCacert: '/ca.pem', etcdCert: '/c.pem', etcdKey: '/k.pem' }).etcdTls).toEqual({
      caFile: '/ca.pem',
      certFile: '/c.pem',
      keyFile: '/k.pem',
    });
    expect(() => parseManagerConfig({ etcdEndpoints: 'https://10.0.0.5:2379' })).toThrow(/need --etcd-cacert FILE/);
    expect(() => parseManagerConfig({ etcdEndpoints: 'https://a:2379,b:2379', etcdCacert: '/ca.pem' })).toThrow(/mixes http:\/\/ and https:\/\//);
    expect(() => parseManagerConfig({ etcdEndpoints: 'https://a:2379', etcdCacert: '/ca.pem', etcdCert: '/c.pem' })).toThrow(/--etcd-cert and --etcd-key go together/);
    expect(() => parseManagerConfig({ etcdEndpoints: 'a:2379', etcdCacert: '/ca.pem' })).toThrow(/need https:\/\/ --etcd-endpoints/);
  });

  it('bounds --node-cert-ttl, naming the flag', () => {
    expect(parseManagerConfig({ nodeCertTtl: '6s' }).nodeCertTtlMs).toBe(6000);
    expect(() => parseManagerConfig({ nodeCertTtl: '1s' })).toThrow(/--node-cert-ttl "1s" must be from 4s to 365 days/);
    expect(() => parseManagerConfig({ nodeCertTtl: 'soon' })).toThrow(/--node-cert-ttl "soon" is not a duration/);
  });

  it('returns a frozen config', () => {
    const config = parseManagerConfig({ etcdEndpoints: 'a:2379' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.etcdEndpoints)).toBe(true);
    expect(Object.isFrozen(config.defaultAddrPools)).toBe(true);
  });

  it('takes the given values', () => {
    const config = parseManagerConfig({
      listen: '10.1.0.1:5000',
      http: 'localhost:5001',
      dataDir: ' /srv/ctnet ',
      defaultAddrPool: ['172.20.0.0/14', '192.168.0.0/16'],
      defaultAddrPoolSize: '26',
      vxlanPort: '8472',
      exclude: ['172.20.0.5/24'],
      nodeGrace: '1m',
      nodeRetention: '2h',
      nodeTtl: '2500ms',
      embeddedEtcdPort: '2379',
    });
    expect(config).toMatchObject({
      listen: { host: '10.1.0.1', port: 5000 },
      http: { host: 'localhost', port: 5001 },
      dataDir: '/srv/ctnet',
      defaultAddrPools: [parseCidr('172.20.0.0/14'), parseCidr('192.168.0.0/16')],
      defaultAddrPoolSize: 26,
      vxlanPort: 8472,
      excludes: [parseCidr('172.20.0.0/24')],
      nodeGraceMs: 60_000,
      nodeRetentionMs: 7_200_000,
      nodeTtlSeconds: 3,
      embeddedEtcdPort: 2379,
    });
  });

  it('splits etcd endpoints, drops blanks and adds http:// where no scheme is given', () => {
    expect(parseManagerConfig({ etcdEndpoints: ' e1:2379, http://e2:2379,,http://e3:2379 ,' }).etcdEndpoints).toEqual([
      'http://e1:2379',
      'http://e2:2379',
      'http://e3:2379',
    ]);
    expect(parseManagerConfig({ etcdEndpoints: '  ' }).etcdEndpoints).toEqual([]);
  });

  it('uses the default pool when the list is empty', () => {
    expect(parseManagerConfig({ defaultAddrPool: [] }).defaultAddrPools).toEqual([parseCidr('10.0.0.0/8')]);
  });

  it.each([
    ['bad listen', { listen: '0.0.0.0' }, '--listen "0.0.0.0" is not host:port'],
    ['bad http port', { http: '127.0.0.1:99999' }, '--http "127.0.0.1:99999" is not host:port'],
    ['bad node grace', { nodeGrace: 'soon' }, '--node-grace "soon" is not a duration'],
    ['bad node ttl', { nodeTtl: '10 s' }, '--node-ttl "10 s" is not a duration'],
    ['node ttl under 2s', { nodeTtl: '1500ms' }, '--node-ttl must be at least 2s'],
    ['bad vxlan port', { vxlanPort: '0' }, '--vxlan-port "0" is not a port'],
    ['bad embedded etcd port', { embeddedEtcdPort: 'x' }, '--embedded-etcd-port "x" is not a port'],
    ['pool with host bits', { defaultAddrPool: ['10.0.0.1/8'] }, /--default-addr-pool .*did you mean 10\.0\.0\.0\/8\?/],
    ['pool size 7', { defaultAddrPoolSize: '7' }, '--default-addr-pool-size "7" must be a prefix length from 8 to 30'],
    ['pool size 31', { defaultAddrPoolSize: '31' }, /must be a prefix length from 8 to 30/],
    ['pool size not a number', { defaultAddrPoolSize: '24a' }, /must be a prefix length/],
    ['pool smaller than pool size', { defaultAddrPool: ['10.0.0.0/25'] }, 'pool /25 is smaller than --default-addr-pool-size /24'],
    ['bad exclude', { exclude: ['10.0.0.0'] }, '--exclude "10.0.0.0" is not a CIDR'],
  ])('rejects %s', (_label, raw, message) => {
    expectInvalid(() => parseManagerConfig(raw), message);
  });
});
