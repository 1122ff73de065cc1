import { describe, expect, it } from 'vitest';
import type { DesiredSandbox } from '@ctnet/core';
import { hostsFile, nameservers, resolvConf } from './files.js';

const sb = (dns: string[] = [], dnsSearch: string[] = []): DesiredSandbox => ({
  netns: 'ctns-1',
  container: { id: 'c', name: 'web', node: 'h1', cmd: ['x'], env: {}, hostname: 'www', dns, dnsSearch, createdAt: '' },
  interfaces: [
    { endpointId: 'e', networkId: 'n', bridge: 'b', hostVeth: 'v', ifname: 'eth0', mac: 'm', cidr: '10.10.0.2/24', gateway: '10.10.0.1', mtu: 1450 },
  ],
});
const host = 'nameserver 192.0.2.53\nsearch corp.example\n';

describe('sandbox files', () => {
  it('points a sandbox with an interface at the embedded resolver on its gateway', () => {
    expect(resolvConf(sb(), host)).toBe('nameserver 10.10.0.1\noptions ndots:0\n');
    expect(resolvConf(sb(['10.0.0.53'], ['svc.local']), host)).toBe('nameserver 10.10.0.1\nsearch svc.local\noptions ndots:0\n');
  });

  it('without an interface, uses the host resolv.conf unless --dns or --dns-search is given', () => {
    const none = { ...sb(), interfaces: [] };
    expect(resolvConf(none, host)).toBe(host);
    expect(resolvConf({ ...none, container: { ...none.container, dns: ['10.0.0.53'] } }, host)).toBe('nameserver 10.0.0.53\n');
  });

  it('reads the nameservers of a resolv.conf', () => {
    expect(nameservers(host)).toEqual(['192.0.2.53']);
  });

  it('maps every interface address to the hostname and the container name', () => {
    expect(hostsFile(sb())).toContain('10.10.0.2\twww web\n');
  });
});
