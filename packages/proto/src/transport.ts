import {
  credentials,
  experimental,
  Metadata,
  ServerCredentials,
  status,
  type ChannelCredentials,
  type ChannelOptions,
  type ServiceError,
} from '@grpc/grpc-js';
import { CtnetError, ErrorCode } from '@ctnet/core';

/**
 * The one place transport settings are spelled: message limits, keep-alives, TLS credentials
 * and the mapping between ctnet errors and gRPC statuses (both directions). The manager, the
 * agent and the CLI all go through it.
 *
 * What a client sends is small (records are capped by core's LIMITS), so the manager
 * accepts at most REQUEST_LIMIT per message; what the manager sends can be large (a snapshot
 * of a big cluster, a listing), so clients accept up to RESPONSE_LIMIT.
 */
export const REQUEST_LIMIT = 16 * 1024 * 1024;
export const RESPONSE_LIMIT = 64 * 1024 * 1024;

/**
 * Every manager certificate names this, and every client checks it whatever address it
 * dialled (as Swarm does with "swarm-manager"): trust comes from the cluster's CA, and only
 * managers hold certificates with this name.
 */
export const MANAGER_SERVER_NAME = 'ctnet-manager';

export const serverOptions = (): ChannelOptions => ({
  'grpc.max_receive_message_length': REQUEST_LIMIT,
  'grpc.max_send_message_length': RESPONSE_LIMIT,
  // A peer that vanished without a word (a host rebooted, a cable pulled) is noticed within
  // ~30 s, so its stream (one per node) does not lock its agent out when it comes back.
  'grpc.keepalive_time_ms': 20_000,
  'grpc.keepalive_timeout_ms': 10_000,
  // Agents ping every 10 s: allow it.
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
});

export const clientOptions = (extra: ChannelOptions = {}): ChannelOptions => ({
  'grpc.max_receive_message_length': RESPONSE_LIMIT,
  'grpc.max_send_message_length': REQUEST_LIMIT,
  'grpc.ssl_target_name_override': MANAGER_SERVER_NAME,
  ...extra,
});

/** A PEM credential: the trusted roots, and (for mutual TLS) a certificate and its key. */
export interface TlsCredential {
  readonly caPem: string;
  readonly certPem?: string;
  readonly keyPem?: string;
}

/**
 * The manager's identity and the roots it trusts, replaceable while serving (its own
 * certificate renewed, a CA rotation): new handshakes use the new ones, live connections
 * stay up. Until `set` is first called, handshakes fail and clients see UNAVAILABLE.
 */
export class ServerCertificates implements experimental.CertificateProvider {
  private identity: experimental.IdentityCertificateUpdate | null = null;
  private roots: experimental.CaCertificateUpdate | null = null;
  private readonly caListeners = new Set<experimental.CaCertificateUpdateListener>();
  private readonly idListeners = new Set<experimental.IdentityCertificateUpdateListener>();

  /** `chainPem`: the server certificate followed by the CA, so joining agents can read the CA. */
  set(chainPem: string, keyPem: string, rootsPem: string): void {
    this.identity = { certificate: Buffer.from(chainPem), privateKey: Buffer.from(keyPem) };
    this.roots = { caCertificate: Buffer.from(rootsPem) };
    for (const l of this.caListeners) l(this.roots);
    for (const l of this.idListeners) l(this.identity);
  }

  get ready(): boolean {
    return this.identity !== null;
  }

  // grpc-js registers listeners before it registers the watcher they feed: a listener called
  // synchronously would be lost, so known values are delivered on the next turn.
  addCaCertificateListener(l: experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(l);
    if (this.roots) setImmediate(() => this.caListeners.has(l) && l(this.roots));
  }
  removeCaCertificateListener(l: experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: experimental.IdentityCertificateUpdateListener): void {
    this.idListeners.add(l);
    if (this.identity) setImmediate(() => this.idListeners.has(l) && l(this.identity));
  }
  removeIdentityCertificateListener(l: experimental.IdentityCertificateUpdateListener): void {
    this.idListeners.delete(l);
  }
}

/**
 * TLS with client certificates requested but not required: the one unauthenticated call
 * (Join) must get through; every other call is refused by the manager's per-call check of
 * the certificate against the cluster's roots and its revocation list.
 */
export function serverCredentials(certs: ServerCertificates): ServerCredentials {
  // grpc-js passes its two providers on in (identity, CA) order despite the parameter names.
  return experimental.createCertificateProviderServerCredentials(certs, certs, false);
}

export function clientCredentials(tls: TlsCredential): ChannelCredentials {
  const ca = Buffer.from(tls.caPem);
  if (tls.certPem && tls.keyPem) return credentials.createSsl(ca, Buffer.from(tls.keyPem), Buffer.from(tls.certPem));
  return credentials.createSsl(ca);
}

/** The peer certificate of each HTTP/2 session (one TLS connection), by session. */
const bySession = new WeakMap<object, Buffer | undefined>();

/**
 * The DER certificate a caller presented, if any. Reading it costs ~40 µs (Node builds the
 * whole certificate object, fingerprints included) and it cannot change within a TLS
 * connection, so it is read once per connection: calls on one connection get the same Buffer
 * object. grpc-js does not expose the connection; where its internals do not show it, every
 * call reads the certificate again.
 */
export function peerCertificate(call: { getAuthContext?(): { sslPeerCertificate?: { raw?: Buffer } } | null }): Buffer | undefined {
  const session = (call as { call?: { stream?: { session?: object } } }).call?.stream?.session;
  if (session && bySession.has(session)) return bySession.get(session);
  const raw = call.getAuthContext?.()?.sslPeerCertificate?.raw;
  if (session) bySession.set(session, raw);
  return raw;
}

/** Set on every error the manager sends, so the code survives any status mapping. */
export const CODE_METADATA_KEY = 'ctnet-code';

/** A CtnetError as a grpc-js status (the code's name is a gRPC status name by design). */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const e = CtnetError.from(err);
  const code = (status as unknown as Record<string, number>)[e.code] ?? status.INTERNAL;
  const metadata = new Metadata();
  metadata.set(CODE_METADATA_KEY, e.code);
  return { code, details: e.message, metadata };
}

const CODE_NAMES = new Set<string>(Object.values(ErrorCode));

/** The CtnetError a status carries: the named code first, else the status number's name. */
export function fromServiceError(err: ServiceError): CtnetError {
  const named = err.metadata?.get(CODE_METADATA_KEY)[0];
  const byNumber = Object.entries(status).find(([, v]) => v === err.code)?.[0];
  const text = String(named ?? byNumber);
  const code = CODE_NAMES.has(text) ? (text as ErrorCode) : ErrorCode.Unavailable;
  return new CtnetError(code, err.details || err.message, { cause: err });
}
