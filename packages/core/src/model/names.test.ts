import { describe, it, expect } from 'vitest';
import { CtnetError, ErrorCode } from '../errors.js';
import { nameKey, parseKeyValues, parseName } from './names.js';

function caught(fn: () => unknown): CtnetError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CtnetError) return err;
    throw err;
  }
  throw new Error('expected a CtnetError, but nothing was thrown');
}

describe('parseName', () => {
  it.each(['a', 'app', 'App-1', '0net', 'a'.repeat(63)])('accepts %s', (name) => {
    expect(parseName(name, 'network')).toBe(name);
  });

  it('trims and keeps the case the user wrote', () => {
    expect(parseName('  Frontend ', 'network')).toBe('Frontend');
  });

  it('rejects an empty or blank name', () => {
    for (const text of ['', '   ']) {
      const err = caught(() => parseName(text, 'network'));
      expect(err.code).toBe(ErrorCode.InvalidArgument);
      expect(err.message).toBe('network name is empty; give a name such as "app"');
    }
  });

  it.each([
    ['my_net', 'my-net'],
    ['-net', 'net'],
    ['net-', 'net'],
    ['a.b', 'a-b'],
    ['a'.repeat(64), 'a'.repeat(63)],
    ['___', 'app'],
  ])('rejects %s and suggests %s', (name, suggestion) => {
    const err = caught(() => parseName(name, 'endpoint'));
    expect(err.code).toBe(ErrorCode.InvalidArgument);
    expect(err.message).toContain(`endpoint name "${name}" is not a valid DNS label`);
    expect(err.message).toContain(`(e.g. "${suggestion}")`);
  });

  it('suggests a label that is itself valid when the cut at 63 characters ends on a hyphen', () => {
    const name = `${'a'.repeat(62)}_b`;
    const suggestion = /\(e\.g\. "([^"]*)"\)/.exec(caught(() => parseName(name, 'network')).message)?.[1];
    expect(suggestion).toBeDefined();
    expect(parseName(suggestion!, 'network')).toBe(suggestion);
  });
});

describe('nameKey', () => {
  it('folds case, as DNS does', () => {
    expect(nameKey('Web-1')).toBe(nameKey('web-1'));
    expect(nameKey('Web-1')).toBe('web-1');
  });
});

describe('parseKeyValues', () => {
  it('splits on the first = and trims; a later key wins', () => {
    expect(parseKeyValues(['a=1', ' b = x=y ', 'a=2', 'empty='], 'label')).toEqual({ a: '2', b: 'x=y', empty: '' });
  });

  it.each(['novalue', '=x', ''])('rejects %j', (pair) => {
    const err = caught(() => parseKeyValues([pair], 'label'));
    expect(err.code).toBe(ErrorCode.InvalidArgument);
    expect(err.message).toBe(`label "${pair}" is not of the form key=value`);
  });
});
