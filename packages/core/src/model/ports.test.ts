import { describe, expect, it } from 'vitest';
import { CtnetError } from '../errors.js';
import { parseContainerRequest } from './container.js';
import { formatPortMapping, parseExpose, parsePortMapping, parsePublish, portsClash } from './ports.js';

const fails = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CtnetError);
    return (e as Error).message;
  }
  throw new Error('did not fail');
};

describe('parsePortMapping (docker run -p)', () => {
  it('reads every form Docker accepts', () => {
    expect(parsePortMapping('80')).toEqual([{ protocol: 'tcp', hostIp: '', hostPort: 0, containerPort: 80 }]);
    expect(parsePortMapping('8080:80')).toEqual([{ protocol: 'tcp', hostIp: '', hostPort: 8080, containerPort: 80 }]);
    expect(parsePortMapping('127.0.0.1:8080:80/udp')).toEqual([{ protocol: 'udp', hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80 }]);
    expect(parsePortMapping('10.1.2.3::53/udp')).toEqual([{ protocol: 'udp', hostIp: '10.1.2.3', hostPort: 0, containerPort: 53 }]);
    expect(parsePortMapping('8000-8001:80-81').map((m) => `${m.hostPort}:${m.containerPort}`)).toEqual(['8000:80', '8001:81']);
    expect(parsePortMapping('7000-7001').map((m) => m.containerPort)).toEqual([7000, 7001]);
    expect(parsePortMapping(' 8080:80/TCP ')[0]!.protocol).toBe('tcp');
  });

  it('refuses what Docker refuses, naming the part and the fix', () => {
    expect(fails(() => parsePortMapping(''))).toMatch(/names no port/);
    expect(fails(() => parsePortMapping('http'))).toMatch(/invalid container port "http"/);
    expect(fails(() => parsePortMapping('0'))).toMatch(/1 to 65535/);
    expect(fails(() => parsePortMapping('65536'))).toMatch(/invalid container port "65536"/);
    expect(fails(() => parsePortMapping('70000:80'))).toMatch(/invalid host port "70000"/);
    expect(fails(() => parsePortMapping('8080:'))).toMatch(/no container port/);
    expect(fails(() => parsePortMapping(':8080:80'))).toMatch(/empty host IP/);
    expect(fails(() => parsePortMapping('1.2.3:80:80'))).toMatch(/1\.2\.3/);
    expect(fails(() => parsePortMapping('1:2:3:4'))).toMatch(/too many ":"/);
    expect(fails(() => parsePortMapping('80/sctp'))).toMatch(/invalid protocol "sctp"/);
    expect(fails(() => parsePortMapping('8000-8002:80-81'))).toMatch(/same length/);
    expect(fails(() => parsePortMapping('81-80'))).toMatch(/end is before the start/);
    expect(fails(() => parsePortMapping('-1'))).toMatch(/invalid container port/);
  });

  it('prints mappings as docker port does', () => {
    expect(formatPortMapping({ protocol: 'udp', hostIp: '', hostPort: 5353, containerPort: 53 })).toBe('53/udp -> 0.0.0.0:5353');
  });
});

describe('parsePublish (service create --publish)', () => {
  it('reads the long and the short form; published may be left to the manager', () => {
    expect(parsePublish('published=8080,target=80')).toEqual({ protocol: 'tcp', published: 8080, target: 80, mode: 'ingress' });
    expect(parsePublish('target=53,protocol=udp,mode=host')).toEqual({ protocol: 'udp', published: 0, target: 53, mode: 'host' });
    expect(parsePublish('8080:80/udp')).toEqual({ protocol: 'udp', published: 8080, target: 80, mode: 'ingress' });
  });

  it('refuses malformed specs like Swarm', () => {
    expect(fails(() => parsePublish('published=8080'))).toMatch(/missing mandatory field "target"/);
    expect(fails(() => parsePublish('target=80,mode=bridge'))).toMatch(/must be either "ingress" or "host"/);
    expect(fails(() => parsePublish('target=80,colour=red'))).toMatch(/unknown field "colour"/);
    expect(fails(() => parsePublish('target=80,published'))).toMatch(/key=value pair/);
    expect(fails(() => parsePublish('target=80,protocol=sctp'))).toMatch(/invalid protocol "sctp"/);
    expect(fails(() => parsePublish('target=0'))).toMatch(/invalid target port/);
    expect(fails(() => parsePublish('127.0.0.1:80:80'))).toMatch(/drop the host IP/);
    expect(fails(() => parsePublish('80-81:80-81'))).toMatch(/one port per --publish/);
  });
});

describe('ports in a container request', () => {
  const req = { name: 'web', cmd: ['x'] };
  it('exposes published ports, and -P publishes the exposed rest on chosen ports', () => {
    const spec = parseContainerRequest({ ...req, publish: ['8080:80'], expose: ['53/udp', '80'], publishAll: true });
    expect(spec.expose).toEqual([{ port: 53, protocol: 'udp' }, { port: 80, protocol: 'tcp' }]);
    expect(spec.ports).toEqual([
      { protocol: 'tcp', hostIp: '', hostPort: 8080, containerPort: 80 },
      { protocol: 'udp', hostIp: '', hostPort: 0, containerPort: 53 },
    ]);
  });
  it('refuses -P with nothing exposed, a host port twice, a link to itself or two links with one alias', () => {
    expect(fails(() => parseContainerRequest({ ...req, publishAll: true }))).toMatch(/none is exposed/);
    expect(fails(() => parseContainerRequest({ ...req, publish: ['8080:80', '8080:81'] }))).toMatch(/host port 8080\/tcp is published twice/);
    expect(parseContainerRequest({ ...req, publish: ['8080:80', '8080:80/udp'] }).ports).toHaveLength(2);
    expect(fails(() => parseContainerRequest({ ...req, links: ['web'] }))).toMatch(/cannot --link to itself/);
    expect(fails(() => parseContainerRequest({ ...req, links: ['a:db', 'b:db'] }))).toMatch(/alias db/);
    expect(fails(() => parseExpose('/udp'))).toMatch(/names no port/);
  });
  it('tells clashing claims apart: protocol, port and overlapping addresses', () => {
    const a = { protocol: 'tcp' as const, hostIp: '', hostPort: 80 };
    expect(portsClash(a, { ...a, hostIp: '10.0.0.1' })).toBe(true);
    expect(portsClash({ ...a, hostIp: '10.0.0.2' }, { ...a, hostIp: '10.0.0.1' })).toBe(false);
    expect(portsClash(a, { ...a, protocol: 'udp' })).toBe(false);
  });
});

describe('limits on ports and record sizes', () => {
  const base = { name: 'p', cmd: ['true'] };
  it('regression: -p 1-20000 expanded 20,000 mappings (and froze the manager); a range over 1,000 ports is refused before expanding', () => {
    expect(() => parsePortMapping('1-20000')).toThrow(/has 20000 ports, more than the 1000/);
    expect(() => parseExpose('1-65535')).toThrow(/has 65535 ports/);
    expect(parsePortMapping('1-1000')).toHaveLength(1000);
    // several ranges that add up past the bound
    expect(() => parseContainerRequest({ ...base, publish: ['1-600', '1001-1600'] })).toThrow(/names 1200 ports, more than the 1000/);
  });
  it('regression: record sizes were uncapped; env, command, lists and labels have bounds with clear errors', () => {
    expect(() => parseContainerRequest({ ...base, env: { A: 'x'.repeat(70_000) } })).toThrow(/environment is 70001 bytes, more than the 65536/);
    expect(() => parseContainerRequest({ ...base, env: Object.fromEntries(Array.from({ length: 1001 }, (_, i) => [`V${i}`, ''])) })).toThrow(/too many environment variables/);
    expect(() => parseContainerRequest({ ...base, cmd: ['sh', 'x'.repeat(70_000)] })).toThrow(/the command is \d+ bytes/);
    expect(() => parseContainerRequest({ ...base, dns: Array.from({ length: 65 }, () => '1.1.1.1') })).toThrow(/too many --dns servers: 65 given, at most 64/);
    // multi-byte characters count as bytes, as etcd stores them
    expect(() => parseContainerRequest({ ...base, env: { A: '€'.repeat(22_000) } })).toThrow(/66001 bytes/);
    expect(parseContainerRequest({ ...base, env: { A: 'x'.repeat(60_000) } }).env.A).toHaveLength(60_000);
  });
});
