import { CtnetError, ErrorCode } from '@ctnet/core';

/**
 * Maps whatever the etcd client throws to a CtnetError. Anything that is not our own error
 * means etcd could not be reached or did not answer in time: UNAVAILABLE, naming the
 * endpoints so the operator knows what to check.
 */
export function etcdError(err: unknown, endpoints: readonly string[], doing: string): CtnetError {
  if (err instanceof CtnetError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  // etcd refused the request itself: retrying cannot help, so say what to change instead.
  if (/too many operations in txn request/i.test(detail)) {
    return new CtnetError(
      ErrorCode.ResourceExhausted,
      `etcd refused the transaction for ${doing}: it has more operations than etcd's --max-txn-ops allows; publish fewer ports at once, or start etcd with --max-txn-ops=4096 (ctnet's embedded etcd does)`,
      { cause: err },
    );
  }
  if (/request is too large/i.test(detail)) {
    return new CtnetError(ErrorCode.ResourceExhausted, `etcd refused the request for ${doing} as too large (--max-request-bytes); make the request smaller`, { cause: err });
  }
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
