import { CtnetError, ErrorCode } from '@ctnet/core';

/**
 * Maps whatever the etcd client throws to a CtnetError. Anything that is not our own error
 * means etcd could not be reached or did not answer in time: UNAVAILABLE, naming the
 * endpoints so the operator knows what to check.
 */
export function etcdError(err: unknown, endpoints: readonly string[], doing: string): CtnetError {
  if (err instanceof CtnetError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new CtnetError(
    ErrorCode.Unavailable,
    `etcd did not answer while ${doing} (${shorten(detail)}); check that etcd is running at ${endpoints.join(',')} and retry`,
    { cause: err },
  );
}

export function compactedError(fromRevision: number, detail: string): CtnetError {
  return new CtnetError(
    ErrorCode.Aborted,
    `revision ${fromRevision} has been compacted (${detail}); take a new snapshot`,
  );
}

export function isCompactedError(err: unknown): boolean {
  return err instanceof CtnetError && err.code === ErrorCode.Aborted && err.message.includes('compacted');
}

function shorten(text: string): string {
  const line = text.split('\n')[0] ?? text;
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}
