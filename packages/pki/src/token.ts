import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { invalidArgument } from '@ctnet/core';

/**
 * Join tokens in the form Swarm made familiar: `CTNET-1-<CA digest>-<secret>`. The digest
 * (50 base-36 digits of the CA certificate's SHA-256) lets a joining agent check the manager
 * before it sends anything: no trust on first use. The secret (25 base-36 digits, 128 bits)
 * is what the manager checks (in constant time, through hashes of equal length).
 */
export interface JoinToken {
  readonly caDigest: string;
  readonly secret: string;
}

const TOKEN = /^CTNET-1-([0-9a-z]{50})-([0-9a-z]{25})$/;

export function newJoinSecret(): string {
  return BigInt(`0x${randomBytes(16).toString('hex')}`).toString(36).padStart(25, '0');
}

export function formatJoinToken(t: JoinToken): string {
  return `CTNET-1-${t.caDigest}-${t.secret}`;
}

export function parseJoinToken(text: string): JoinToken {
  const m = TOKEN.exec(text.trim());
  if (!m) {
    throw invalidArgument(
      'the join token is malformed; it looks like CTNET-1-<50 digits and letters>-<25 digits and letters>: print a valid one on a manager with "ctmgr join-token worker"',
    );
  }
  return { caDigest: m[1]!, secret: m[2]! };
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Constant-time comparison of a presented secret with the stored hash. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
