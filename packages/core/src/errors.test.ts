import { describe, it, expect } from 'vitest';
import { CtnetError, ErrorCode, alreadyExists, invalidArgument, isCtnetError, unavailable } from './errors.js';

describe('CtnetError', () => {
  it('is an Error carrying a code, a name and the message', () => {
    const err = new CtnetError(ErrorCode.NotFound, 'network app not found');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('CtnetError');
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toBe('network app not found');
  });

  it('from() returns a CtnetError unchanged', () => {
    const err = alreadyExists('taken');
    expect(CtnetError.from(err, ErrorCode.Unavailable)).toBe(err);
  });

  it('from() wraps an Error as INTERNAL by default and keeps it as cause', () => {
    const cause = new Error('boom');
    const err = CtnetError.from(cause);
    expect(err.code).toBe(ErrorCode.Internal);
    expect(err.message).toBe('boom');
    expect(err.cause).toBe(cause);
  });

  it('from() wraps a non-Error with the given code', () => {
    const err = CtnetError.from('etcd went away', ErrorCode.Unavailable);
    expect(err.code).toBe(ErrorCode.Unavailable);
    expect(err.message).toBe('etcd went away');
  });

  it('unavailable() keeps its cause', () => {
    const cause = new Error('ECONNREFUSED');
    expect(unavailable('etcd is unreachable', cause).cause).toBe(cause);
  });
});

describe('isCtnetError', () => {
  it('matches by class, and by code when one is given', () => {
    const err = invalidArgument('bad');
    expect(isCtnetError(err)).toBe(true);
    expect(isCtnetError(err, ErrorCode.InvalidArgument)).toBe(true);
    expect(isCtnetError(err, ErrorCode.NotFound)).toBe(false);
    expect(isCtnetError(new Error('bad'))).toBe(false);
    expect(isCtnetError({ code: 'INVALID_ARGUMENT', message: 'bad' })).toBe(false);
  });
});
