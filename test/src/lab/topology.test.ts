import { describe, expect, it } from 'vitest';
import { deletionOrder } from './sweep.mjs';
import { IFNAME_MAX, ipArgv, nodeCommands, planLab, randomPrefix, underlayCommands } from './topology.js';

describe('planLab', () => {
  it('names namespaces <prefix>-ul, -m, -hN and addresses them in one /24', () => {
    const plan = planLab('ct0a1b2c', 3);
    expect(plan.subnetOctet).toBe(200 + (0x0a % 51));
    expect(plan.underlayNs).toBe('ct0a1b2c-ul');
    expect(plan.manager).toEqual({ name: 'm', ns: 'ct0a1b2c-m', addr: '192.168.210.254' });
    expect(plan.hosts.map((h) => [h.name, h.ns, h.addr])).toEqual([
      ['h1', 'ct0a1b2c-h1', '192.168.210.1'],
      ['h2', 'ct0a1b2c-h2', '192.168.210.2'],
      ['h3', 'ct0a1b2c-h3', '192.168.210.3'],
    ]);
    expect(plan.managerAddr).toBe('192.168.210.254:4700');
    expect(plan.sandboxPrefix).toBe('ct0a1b2c-s');
  });

  it('keeps the subnet within 192.168.200-250 for every prefix', () => {
    for (const hex of ['00', '32', '33', 'ff', '99']) {
      const octet = planLab(`ct${hex}0000`, 1).subnetOctet;
      expect(octet).toBeGreaterThanOrEqual(200);
      expect(octet).toBeLessThanOrEqual(250);
    }
  });

  it('keeps every namespace and port name within IFNAMSIZ at the largest lab', () => {
    const plan = planLab(randomPrefix(), 200);
    const names = [plan.underlayNs, plan.manager.ns, ...plan.hosts.map((h) => h.ns), ...plan.hosts.map((h) => h.name)];
    for (const n of names) expect(n.length).toBeLessThanOrEqual(IFNAME_MAX);
    // What an agent can still append to the sandbox prefix and stay a valid interface name.
    expect(IFNAME_MAX - plan.sandboxPrefix.length).toBe(5);
  });

  it('rejects prefixes that could match namespaces it does not own, and bad host counts', () => {
    expect(() => planLab('ctnet', 1)).toThrow(/"ct" and 6 lowercase hex digits/);
    expect(() => planLab('ct0a1b2', 1)).toThrow(/6 lowercase hex/);
    expect(() => planLab('ct0a1b2c', 0)).toThrow(/from 1 to 200/);
    expect(() => planLab('ct0a1b2c', 201)).toThrow(/from 1 to 200/);
  });
});

describe('lab commands', () => {
  it('builds everything with ip -n inside the lab namespaces, never in the root namespace', () => {
    const plan = planLab('ct0a1b2c', 2);
    const cmds = [...underlayCommands(plan), ...[plan.manager, ...plan.hosts].flatMap((n) => nodeCommands(plan, n))];
    for (const cmd of cmds) {
      if (cmd.ns === undefined) expect(cmd.args.slice(0, 2)).toEqual(['netns', 'add']);
      else expect(cmd.ns.startsWith('ct0a1b2c-')).toBe(true);
    }
    expect(cmds.some((c) => c.args.includes('default') || c.args.includes('route'))).toBe(false);
    expect(ipArgv(nodeCommands(plan, plan.hosts[0]!)[2]!)).toEqual([
      '-n', 'ct0a1b2c-ul', 'link', 'add', 'name', 'h1', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', 'ct0a1b2c-h1',
    ]);
  });

  it('deletes sandboxes first and the underlay last, and only the prefix it was given', () => {
    const names = ['ct0a1b2c-ul', 'ct0a1b2c-h2', 'ct0a1b2c-m', 'ct0a1b2c-sx1', 'ct0a1b2cd-h1', 'ct999999-h1', 'ct0a1b2c-h1'];
    expect(deletionOrder('ct0a1b2c', names)).toEqual(['ct0a1b2c-sx1', 'ct0a1b2c-h1', 'ct0a1b2c-h2', 'ct0a1b2c-m', 'ct0a1b2c-ul']);
  });
});
