import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@ctnet/core';
import { cleanMessage, kernelError, kernelErrorCode } from './errors.js';

describe('kernelErrorCode', () => {
  // Messages as iproute2 6.1 printed them in the lab.
  it.each([
    ['RTNETLINK answers: File exists', ErrorCode.AlreadyExists],
    ['Error: ipv4: Address already assigned.', ErrorCode.AlreadyExists],
    ['Error: A VXLAN device with the specified VNI already exists.', ErrorCode.AlreadyExists],
    ['Cannot find device "nope0"', ErrorCode.NotFound],
    ['RTNETLINK answers: No such device', ErrorCode.NotFound],
    ['Error: argument "nobr0" is wrong: Device does not exist', ErrorCode.NotFound],
    ['RTNETLINK answers: No such file or directory', ErrorCode.NotFound],
    ['Error: ipv4: Address not found.', ErrorCode.NotFound],
    ['Cannot open network namespace "ctnet-x": No such file or directory', ErrorCode.NotFound],
    ['RTNETLINK answers: Operation not permitted', ErrorCode.FailedPrecondition],
    ['Error: vxlan: cannot change PROXY flag.', ErrorCode.FailedPrecondition],
    ['RTNETLINK answers: No buffer space available', ErrorCode.ResourceExhausted],
    ['RTNETLINK answers: Device or resource busy', ErrorCode.Unavailable],
    ['RTNETLINK answers: Invalid argument', ErrorCode.InvalidArgument],
    ['RTNETLINK answers: Something new', ErrorCode.Internal],
  ])('%s -> %s', (message, code) => {
    expect(kernelErrorCode(message)).toBe(code);
  });
});

describe('kernelError', () => {
  it('says what was attempted, what the kernel said without prefixes, and what to do', () => {
    const err = kernelError('ip -j neigh show', 'RTNETLINK answers: Operation not permitted\n');
    expect(err.code).toBe(ErrorCode.FailedPrecondition);
    expect(err.message).toBe('ip -j neigh show: Operation not permitted; ctagent needs CAP_NET_ADMIN; run it as root or grant the capability');
  });

  it('names the namespace problem rather than a device one', () => {
    const err = kernelError('ip -batch', 'Cannot open network namespace "ctnet-x": No such file or directory');
    expect(err.code).toBe(ErrorCode.NotFound);
    expect(err.message).toMatch(/ip netns add/);
  });

  it('keeps the cause and copes with empty stderr', () => {
    const cause = new Error('x');
    const err = kernelError('bridge -batch', '', cause);
    expect(err.code).toBe(ErrorCode.Internal);
    expect(err.message).toBe('bridge -batch: failed without a message');
    expect(err.cause).toBe(cause);
  });
});

describe('cleanMessage', () => {
  it('joins lines and drops iproute2 prefixes', () => {
    expect(cleanMessage('RTNETLINK answers: File exists\n\nError: ipv4: Address not found.\n')).toBe('File exists; ipv4: Address not found.');
  });
});
