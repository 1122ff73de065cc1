import { CtnetError, ErrorCode } from '@ctnet/core';

/**
 * The one place that reads `ip`/`bridge` error text. iproute2 prints kernel errors as
 * "RTNETLINK answers: <strerror>" or, when the kernel sent an extended ack, as
 * "Error: <message>."; its own checks print plain sentences ("Cannot find device "x"").
 * First match wins, so the specific forms come before the generic errno strings.
 */
const RULES: readonly { readonly match: RegExp; readonly code: ErrorCode; readonly fix: string }[] = [
  {
    match: /Cannot open network namespace/i,
    code: ErrorCode.NotFound,
    fix: 'the network namespace does not exist; create it (ip netns add) or fix its name',
  },
  {
    match: /cannot change \S+ flag/i,
    code: ErrorCode.FailedPrecondition,
    fix: 'this VXLAN attribute cannot be changed on a live device; delete and recreate the device',
  },
  {
    match: /File exists|already exists|already assigned/i,
    code: ErrorCode.AlreadyExists,
    fix: 'it is already there; compare with the actual state before adding, or use a replace',
  },
  {
    match: /Cannot find device|No such device|Device does not exist/i,
    code: ErrorCode.NotFound,
    fix: 'the device does not exist; create it first (ops on a device must come after its link-add)',
  },
  {
    match: /No such file or directory|not found/i,
    code: ErrorCode.NotFound,
    fix: 'the entry does not exist; re-read the kernel state before removing',
  },
  {
    match: /Operation not permitted|Permission denied/i,
    code: ErrorCode.FailedPrecondition,
    fix: 'ctagent needs CAP_NET_ADMIN; run it as root or grant the capability',
  },
  {
    match: /Operation not supported|not supported|Protocol not supported/i,
    code: ErrorCode.FailedPrecondition,
    fix: 'this kernel lacks the feature (is the vxlan or bridge module available?)',
  },
  {
    match: /Network is down/i,
    code: ErrorCode.FailedPrecondition,
    fix: 'bring the device up first',
  },
  {
    match: /No buffer space|Cannot allocate memory|No space left|too many/i,
    code: ErrorCode.ResourceExhausted,
    fix: 'the kernel is out of room (memory, or a table such as gc_thresh3 for neighbours); raise the limit or remove entries',
  },
  {
    match: /Device or resource busy|Resource temporarily unavailable/i,
    code: ErrorCode.Unavailable,
    fix: 'the kernel is busy with this object; retry on the next reconcile',
  },
  {
    match: /Invalid argument|is wrong|invalid|out of range|unknown|required|Garbage/i,
    code: ErrorCode.InvalidArgument,
    fix: 'the kernel or iproute2 rejected the values; this is a bug in what ctnet rendered, please report it',
  },
];

/** The code a kernel/iproute2 message maps to (Internal when nothing matches). */
export function kernelErrorCode(message: string): ErrorCode {
  return RULES.find((r) => r.match.test(message))?.code ?? ErrorCode.Internal;
}

/**
 * Turns `ip`/`bridge` stderr into a CtnetError: the code from the message, the message
 * itself (prefixes trimmed) and what to do about it. `what` says what was attempted.
 */
export function kernelError(what: string, stderr: string, cause?: unknown): CtnetError {
  const text = cleanMessage(stderr) || 'failed without a message';
  const rule = RULES.find((r) => r.match.test(text));
  const message = `${what}: ${text}${rule ? `; ${rule.fix}` : ''}`;
  return new CtnetError(rule?.code ?? ErrorCode.Internal, message, cause === undefined ? undefined : { cause });
}

/** Joins stderr lines into one message, without iproute2's "RTNETLINK answers:"/"Error:" prefixes. */
export function cleanMessage(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.trim().replace(/^(RTNETLINK answers|Error):\s*/, ''))
    .filter((l) => l !== '')
    .join('; ');
}
