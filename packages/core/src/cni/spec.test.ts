import { describe, expect, it } from 'vitest';
import { CniError, cniDnsName, cniErrorResult, cniResult, parseCniArgs, parseCniCall, parseCniConfig } from './spec.js';

const conf = (extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.1.0', name: 'app', type: 'ctnet', ...extra });
const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/c1', CNI_IFNAME: 'eth0' };
const codeOf = (fn: () => unknown): number => {
  try {
    fn();
  } catch (err) {
    if (err instanceof CniError) return err.code;
    throw err;
  }
  return 0;
};

describe('parseCniCall', () => {
  it('reads a whole ADD: variables, arguments and configuration', () => {
    const call = parseCniCall({ ...env, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web-0' }, conf({ waitConverged: true, agentSocket: '/run/x.sock' }));
    expect(call).toMatchObject({ command: 'ADD', containerId: 'c1', netns: '/var/run/netns/c1', ifname: 'eth0', args: { K8S_POD_NAME: 'web-0' } });
    expect(call.config).toMatchObject({ cniVersion: '1.1.0', name: 'app', agentSocket: '/run/x.sock', waitConverged: true });
  });

  it('names the missing or malformed variable (code 4)', () => {
    expect(codeOf(() => parseCniCall({ ...env, CNI_CONTAINERID: '' }, conf()))).toBe(4);
    expect(codeOf(() => parseCniCall({ ...env, CNI_NETNS: 'relative' }, conf()))).toBe(4);
    expect(codeOf(() => parseCniCall({ ...env, CNI_IFNAME: 'a/b' }, conf()))).toBe(4);
    expect(codeOf(() => parseCniCall({ ...env, CNI_COMMAND: 'PUT' }, conf()))).toBe(4);
    expect(() => parseCniCall({ ...env, CNI_NETNS: '' }, conf())).toThrow(/CNI_NETNS is not set; ADD needs it/);
  });

  it('lets DEL come without a namespace, and STATUS and GC without an attachment', () => {
    expect(parseCniCall({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0' }, conf()).netns).toBe('');
    expect(parseCniCall({ CNI_COMMAND: 'STATUS' }, conf()).command).toBe('STATUS');
    const gc = parseCniCall({ CNI_COMMAND: 'GC' }, conf({ 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }] }));
    expect(gc.config.validAttachments).toEqual([{ containerId: 'a', ifname: 'eth0' }]);
  });

  it('refuses configurations by the spec\'s codes: 6 not JSON, 7 invalid, 1 an unsupported version', () => {
    expect(codeOf(() => parseCniConfig('{'))).toBe(6);
    expect(codeOf(() => parseCniConfig(conf({ name: '' })))).toBe(7);
    expect(codeOf(() => parseCniConfig(conf({ agentSocket: 'relative.sock' })))).toBe(7);
    expect(codeOf(() => parseCniConfig(conf({ runtimeConfig: { portMappings: [{ hostPort: 0, containerPort: 80 }] } })))).toBe(7);
    expect(codeOf(() => parseCniConfig(conf({ cniVersion: '0.2.0' })))).toBe(1);
    expect(codeOf(() => parseCniCall({ ...env, CNI_COMMAND: 'CHECK' }, conf()))).toBe(7); // CHECK needs prevResult
    expect(codeOf(() => parseCniCall({ ...env, CNI_COMMAND: 'CHECK' }, conf({ cniVersion: '0.3.1', prevResult: {} })))).toBe(1);
    expect(codeOf(() => parseCniCall({ CNI_COMMAND: 'GC' }, conf({ cniVersion: '1.0.0' })))).toBe(1);
    expect(parseCniCall({ CNI_COMMAND: 'GC' }, conf()).config.validAttachments).toBeUndefined();
  });

  it('reads portMappings (protocol defaults to tcp, 0.0.0.0 means every address)', () => {
    const c = parseCniConfig(conf({ runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, hostIP: '0.0.0.0' }, { hostPort: 53, containerPort: 53, protocol: 'UDP' }] } }));
    expect(c.portMappings).toEqual([
      { hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' },
      { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '' },
    ]);
  });

  it('parses CNI_ARGS and refuses an entry without a value', () => {
    expect(parseCniArgs('A=1;B=x=y;')).toEqual({ A: '1', B: 'x=y' });
    expect(codeOf(() => parseCniArgs('novalue'))).toBe(4);
  });
});

describe('names and results', () => {
  it('registers the pod\'s name, else a label\'s, else the container id, as a DNS label', () => {
    const base = { containerId: 'Lab_NS-c1', config: parseCniConfig(conf()), args: {} };
    expect(cniDnsName({ ...base, args: { K8S_POD_NAME: 'web-0' } })).toBe('web-0');
    expect(cniDnsName({ ...base, config: parseCniConfig(conf({ args: { cni: { labels: [{ key: 'name', value: 'api' }] } } })) })).toBe('api');
    expect(cniDnsName(base)).toBe('lab-ns-c1');
    expect(cniDnsName({ ...base, containerId: 'a'.repeat(64) })).toHaveLength(63);
  });

  it('writes results per version: pre-1.0 addresses carry "version": "4"', () => {
    const facts = { hostVeth: 'ctve-1', ifname: 'eth0', mac: '02:42:0a:00:00:02', sandbox: '/proc/1/ns/net', cidr: '10.0.0.2/24', gateway: '10.0.0.1', nameserver: '10.0.0.1' };
    expect(cniResult('1.1.0', facts)).toEqual({
      cniVersion: '1.1.0',
      interfaces: [{ name: 'ctve-1' }, { name: 'eth0', mac: '02:42:0a:00:00:02', sandbox: '/proc/1/ns/net' }],
      ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: '10.0.0.1' }],
      dns: { nameservers: ['10.0.0.1'] },
    });
    expect((cniResult('0.4.0', facts).ips as { version: string }[])[0]!.version).toBe('4');
    expect(cniResult('1.0.0', { ...facts, nameserver: '' }).dns).toEqual({ nameservers: [] });
    expect(cniErrorResult('1.0.0', new CniError(11, 'later', 'why'))).toEqual({ cniVersion: '1.0.0', code: 11, msg: 'later', details: 'why' });
    // Chained after another plugin: its result stays, ours follows and points at our interface.
    const prev = { cniVersion: '1.0.0', interfaces: [{ name: 'lo', sandbox: '/proc/1/ns/net' }], ips: [{ address: '127.0.0.1/8', interface: 0 }], dns: { nameservers: ['1.1.1.1'], search: ['corp'] } };
    const chained = cniResult('1.0.0', facts, prev);
    expect(chained.interfaces).toEqual([{ name: 'lo', sandbox: '/proc/1/ns/net' }, { name: 'ctve-1' }, { name: 'eth0', mac: '02:42:0a:00:00:02', sandbox: '/proc/1/ns/net' }]);
    expect(chained.ips).toEqual([{ address: '127.0.0.1/8', interface: 0 }, { address: '10.0.0.2/24', gateway: '10.0.0.1', interface: 2 }]);
    expect(chained.dns).toEqual({ nameservers: ['1.1.1.1', '10.0.0.1'], search: ['corp'] });
  });
});
