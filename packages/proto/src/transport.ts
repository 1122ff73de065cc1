import { credentials, ServerCredentials, type ChannelOptions } from '@grpc/grpc-js';

/**
 * The one place transport settings are spelled: message limits (and, with the security
 * work, credentials). Both sides set every limit explicitly, so a limit is never what a
 * library happened to default to.
 *
 * What a client sends is small (records are capped by core's LIMITS), so the manager
 * accepts at most REQUEST_LIMIT per message; what the manager sends can be large (a snapshot
 * of a big cluster, a listing), so clients accept up to RESPONSE_LIMIT.
 */
export const REQUEST_LIMIT = 16 * 1024 * 1024;
export const RESPONSE_LIMIT = 64 * 1024 * 1024;

export const serverOptions = (): ChannelOptions => ({
  'grpc.max_receive_message_length': REQUEST_LIMIT,
  'grpc.max_send_message_length': RESPONSE_LIMIT,
});

export const clientOptions = (extra: ChannelOptions = {}): ChannelOptions => ({
  'grpc.max_receive_message_length': RESPONSE_LIMIT,
  'grpc.max_send_message_length': REQUEST_LIMIT,
  ...extra,
});

/** Plaintext for now; the cluster-security work replaces these two with mutual TLS. */
export const serverCredentials = (): ServerCredentials => ServerCredentials.createInsecure();
export const clientCredentials = () => credentials.createInsecure();
