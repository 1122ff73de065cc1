import { describe, expect, it } from 'vitest';
import type { Snapshot } from '@ctnet/proto';
import { createLocalState } from './state.js';

const node = (name: string) => ({ name, addr: '192.168.1.1', hostname: name, labels: {}, routes: [], registeredAt: '' });
const container = (name: string) => ({ id: `${name}-id`, name, node: 'h1', cmd: ['sleep', '1'], env: {}, hostname: name, dns: [], dnsSearch: [], createdAt: '' });
const snapshot: Snapshot = { revision: 10, cluster: { vxlanPort: 4790 }, networks: [], endpoints: [], nodes: [node('h1')], containers: [container('h1')] };

describe('local state', () => {
  it('takes a snapshot, then patches it with changes; a delete names its kind', () => {
    const s = createLocalState();
    expect(s.hasSnapshot).toBe(false);
    s.applySnapshot(snapshot);
    expect([s.revision, s.vxlanPort, s.nodes.size, s.containers.size]).toEqual([10, 4790, 1, 1]);
    // a container and a node may share a name: the kind decides which one goes
    s.applyChanges({ revision: 12, events: [{ deleted: true, id: 'h1', kind: 'container', object: undefined }] });
    expect([s.revision, s.nodes.size, s.containers.size]).toEqual([12, 1, 0]);
    s.applyChanges({ revision: 13, events: [{ deleted: false, id: 'h2', kind: 'node', object: { $case: 'node', value: node('h2') } }] });
    expect([...s.nodes.keys()]).toEqual(['h1', 'h2']);
  });

  it('refuses malformed objects from the wire', () => {
    const s = createLocalState();
    expect(() => s.applySnapshot({ ...snapshot, nodes: [{ ...node('h1'), addr: 'not-an-ip' }] })).toThrow(/not an IPv4 address/);
  });
});
