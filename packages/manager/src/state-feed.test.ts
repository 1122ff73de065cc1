import { describe, expect, it } from 'vitest';
import type { Endpoint } from '@ctnet/core';
import { createStateFeed } from './state-feed.js';
import { diffState } from './view.js';

const batch = (revision: number) => ({ revision, changes: [{ kind: 'node' as const, id: `n${revision}` }] });

describe('state feed', () => {
  it('replays the batches after a revision inside the window, in order', () => {
    const feed = createStateFeed();
    feed.resetFloor(10);
    for (const r of [12, 15, 19]) feed.append(batch(r));
    expect(feed.since(10)!.map((b) => b.revision)).toEqual([12, 15, 19]);
    expect(feed.since(15)!.map((b) => b.revision)).toEqual([19]);
    expect(feed.since(19)).toEqual([]);
    expect(feed.since(9)).toBeUndefined(); // from before this manager's first load
  });

  it('raises the floor as old batches fall out of the window', () => {
    const feed = createStateFeed(2);
    feed.resetFloor(1);
    for (const r of [2, 3, 4]) feed.append(batch(r));
    expect(feed.floor).toBe(2);
    expect(feed.since(1)).toBeUndefined(); // batch 2 is gone: a resume from 1 would miss it
    expect(feed.since(2)!.map((b) => b.revision)).toEqual([3, 4]);
  });

  it('delivers live batches to subscribers until they unsubscribe', () => {
    const feed = createStateFeed();
    const seen: number[] = [];
    const stop = feed.subscribe((b) => seen.push(b.revision));
    feed.append(batch(5));
    stop();
    feed.append(batch(6));
    expect(seen).toEqual([5]);
  });
});

describe('diffState', () => {
  const ep = (name: string, ip: string) => ({ id: name, networkId: 'n', name, node: 'h', ip, mac: 'm', aliases: [], createdAt: '' }) as Endpoint;
  it('turns two copies of the state into puts for new or changed objects and deletes for gone ones', () => {
    const before = { networks: new Map(), nodes: new Map(), endpoints: new Map([['n/a', ep('a', '1')], ['n/b', ep('b', '2')]]) };
    const after = { networks: new Map(), nodes: new Map(), endpoints: new Map([['n/a', ep('a', '1')], ['n/b', ep('b', '3')], ['n/c', ep('c', '4')]]) };
    expect(diffState(before, after)).toEqual([
      { kind: 'endpoint', id: 'n/b', value: ep('b', '3') },
      { kind: 'endpoint', id: 'n/c', value: ep('c', '4') },
    ]);
    expect(diffState(after, before)).toEqual([
      { kind: 'endpoint', id: 'n/b', value: ep('b', '2') },
      { kind: 'endpoint', id: 'n/c' },
    ]);
  });
});
