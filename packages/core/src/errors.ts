/**
 * The one error type of ctnet. Every failure that reaches a user carries a gRPC-style
 * code and a message that names the problem and the fix; `cause` keeps the original.
 * The manager's gRPC adapter maps `code` to a grpc-js status in one place, and the CLI
 * maps it back, so the same error reads the same on both sides of the wire.
 */
export const ErrorCode = {
  InvalidArgument: 'INVALID_ARGUMENT',
  NotFound: 'NOT_FOUND',
  AlreadyExists: 'ALREADY_EXISTS',
  FailedPrecondition: 'FAILED_PRECONDITION',
  ResourceExhausted: 'RESOURCE_EXHAUSTED',
  Aborted: 'ABORTED',
  Unavailable: 'UNAVAILABLE',
  DeadlineExceeded: 'DEADLINE_EXCEEDED',
  Internal: 'INTERNAL',
  /** No valid credential: the caller is not known to the cluster. */
  Unauthenticated: 'UNAUTHENTICATED',
  /** A known caller asking for what its role may not do. */
  PermissionDenied: 'PERMISSION_DENIED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class CtnetError extends Error {
  override readonly name = 'CtnetError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Wraps anything thrown into a CtnetError, keeping CtnetErrors as they are. */
  static from(err: unknown, code: ErrorCode = ErrorCode.Internal): CtnetError {
    if (err instanceof CtnetError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new CtnetError(code, message, { cause: err });
  }
}

export const invalidArgument = (message: string): CtnetError => new CtnetError(ErrorCode.InvalidArgument, message);
export const notFound = (message: string): CtnetError => new CtnetError(ErrorCode.NotFound, message);
export const alreadyExists = (message: string): CtnetError => new CtnetError(ErrorCode.AlreadyExists, message);
export const failedPrecondition = (message: string): CtnetError =>
  new CtnetError(ErrorCode.FailedPrecondition, message);
export const resourceExhausted = (message: string): CtnetError => new CtnetError(ErrorCode.ResourceExhausted, message);
export const unavailable = (message: string, cause?: unknown): CtnetError =>
  new CtnetError(ErrorCode.Unavailable, message, { cause });

export const unauthenticated = (message: string): CtnetError => new CtnetError(ErrorCode.Unauthenticated, message);
export const permissionDenied = (message: string): CtnetError => new CtnetError(ErrorCode.PermissionDenied, message);
export const isCtnetError = (err: unknown, code?: ErrorCode): err is CtnetError =>
  err instanceof CtnetError && (code === undefined || err.code === code);
