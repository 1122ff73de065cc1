import { expect } from 'vitest';
import { CtnetError, ErrorCode } from '../errors.js';

/** Asserts that fn throws a CtnetError with code INVALID_ARGUMENT whose message matches. */
export function expectInvalid(fn: () => unknown, message: string | RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(CtnetError);
  expect((thrown as CtnetError).code).toBe(ErrorCode.InvalidArgument);
  expect((thrown as CtnetError).message).toMatch(message);
}
