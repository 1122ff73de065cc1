import { CtnetError, ErrorCode } from '@ctnet/core';

/**
 * A mistake in how the command was typed (unknown flag or verb, missing NAME): exit 2.
 * It is a CtnetError like every other failure; the subclass only selects the exit code.
 */
export class UsageError extends CtnetError {
  constructor(problem: string, helpCommand: string) {
    super(ErrorCode.InvalidArgument, `${problem}; run "${helpCommand} --help" for usage`);
  }
}

/** The one stderr line for a failure: "ctmgr: <problem and fix>". */
export function errorLine(err: unknown): string {
  const message = err instanceof CtnetError ? err.message : `internal error: ${err instanceof Error ? err.message : String(err)}`;
  return `ctmgr: ${message.replace(/\s*\n\s*/g, ' ').trim()}\n`;
}

export function exitCodeFor(err: unknown): number {
  return err instanceof UsageError ? 2 : 1;
}
