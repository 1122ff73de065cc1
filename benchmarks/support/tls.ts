/**
 * Credentials for benchmarks, got the way users get them (the test harness's helpers): the
 * admin credential a manager writes to <data-dir>/admin, and node certificates through the
 * worker token and Join.
 */
import { join } from 'node:path';
import type { Credential } from '@ctnet/pki';
import { clientCredentials, clientOptions, ManagerServiceClient } from '@ctnet/proto';
import { adminCredential, nodeCredential } from '../../test/src/harness.js';

export function adminClient(addr: string, dataDir: string): ManagerServiceClient {
  return new ManagerServiceClient(addr, clientCredentials(adminCredential({ adminDir: join(dataDir, 'admin') })), clientOptions());
}

export function joinNode(addr: string, dataDir: string, name: string): Promise<Credential> {
  return nodeCredential({ addr, adminDir: join(dataDir, 'admin') }, name);
}
