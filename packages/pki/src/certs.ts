// @peculiar/x509 resolves its ASN.1 helpers through tsyringe, which needs the Reflect
// metadata polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { invalidArgument, nameKey, parseName } from '@ctnet/core';

/**
 * The cluster's certificates: one root CA per cluster (its key lives in etcd, never on an
 * agent), and leaf certificates whose subject is the identity the manager authorises by:
 * CN = the name (node name, admin name or manager id), OU = the role, O = the cluster id.
 * ECDSA P-256 throughout, as Swarm does: small keys, fast handshakes, native in OpenSSL.
 */
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

export type Role = 'node' | 'admin' | 'manager';
const ROLE_OU: Record<Role, string> = { node: 'ctnet-node', admin: 'ctnet-admin', manager: 'ctnet-manager' };
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
/** Leaves start a minute back, so a peer whose clock is a little behind accepts them at once. */
const SKEW_MS = 60_000;
export const CA_TTL_MS = 20 * 365 * 86_400_000;

export interface Identity {
  readonly role: Role;
  readonly name: string;
  readonly clusterId: string;
  /** Hex, lowercase: what revocation lists name. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A CA as stored in etcd: PEM certificate and PKCS#8 PEM key. */
export interface RootCa {
  readonly certPem: string;
  readonly keyPem: string;
}

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

export async function exportKeyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importKeyPem(pem: string): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(pem), ALG, false, ['sign']);
}

const serial = (): string => {
  const b = randomBytes(16);
  b[0]! &= 0x7f; // a positive INTEGER, as RFC 5280 asks
  return b.toString('hex');
};

export async function createRootCa(clusterId: string, now: Date, commonName = 'ctnet root CA'): Promise<RootCa> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}, O=${clusterId}`,
    notBefore: new Date(now.getTime() - SKEW_MS),
    notAfter: new Date(now.getTime() + CA_TTL_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      // Path length 1: a CA rotation puts the next root under this one, cross-signed.
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
}

/**
 * The new root's key certified by the old root (a cross-signed intermediate): a peer that
 * trusts only the old root still accepts certificates the new one signs, through this.
 */
export async function crossSign(oldCa: RootCa, newCaPem: string, now: Date): Promise<string> {
  const oldCert = new x509.X509Certificate(oldCa.certPem);
  const next = new x509.X509Certificate(newCaPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: next.subject,
    issuer: oldCert.subject,
    notBefore: new Date(now.getTime() - SKEW_MS),
    notAfter: new Date(Math.min(next.notAfter.getTime(), oldCert.notAfter.getTime())),
    publicKey: next.publicKey,
    signingKey: await importKeyPem(oldCa.keyPem),
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(next.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(oldCert),
    ],
  });
  return cert.toString('pem');
}

export interface IssueRequest {
  readonly role: Role;
  readonly name: string;
  readonly publicKey: CryptoKey | x509.PublicKey;
  readonly now: Date;
  readonly ttlMs: number;
  /** For a server certificate: the DNS name clients check (the transport's MANAGER_SERVER_NAME). */
  readonly serverName?: string;
}

/** Signs a leaf for `name` in `role`; returns the PEM certificate and the identity it carries. */
export async function issueCertificate(ca: RootCa, req: IssueRequest): Promise<{ certPem: string; identity: Identity }> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const clusterId = clusterIdOf(ca.certPem);
  const name = req.role === 'manager' ? req.name : nameKey(parseName(req.name, req.role));
  const notBefore = new Date(req.now.getTime() - SKEW_MS);
  const notAfter = new Date(Math.min(req.now.getTime() + req.ttlMs, caCert.notAfter.getTime()));
  const usages = req.role === 'manager' ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.clientAuth];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${name}, OU=${ROLE_OU[req.role]}, O=${clusterId}`,
    issuer: caCert.subject,
    notBefore,
    notAfter,
    publicKey: req.publicKey,
    signingKey: await importKeyPem(ca.keyPem),
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(usages),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      ...(req.serverName ? [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: req.serverName }])] : []),
    ],
  });
  const certPem = cert.toString('pem');
  return { certPem, identity: readIdentity(certPem) };
}

/**
 * A plain TLS pair for a service outside the cluster's identities (the embedded etcd's own
 * server and client certificates): names and addresses in the SAN, no ctnet role.
 */
export async function issueServiceCertificate(
  ca: RootCa,
  req: { commonName: string; dnsNames?: readonly string[]; ips?: readonly string[]; server: boolean; client: boolean; now: Date; ttlMs: number },
): Promise<{ certPem: string; keyPem: string }> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const keys = await generateKeyPair();
  const usages = [...(req.server ? [x509.ExtendedKeyUsage.serverAuth] : []), ...(req.client ? [x509.ExtendedKeyUsage.clientAuth] : [])];
  const names = [...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })), ...(req.ips ?? []).map((value) => ({ type: 'ip' as const, value }))];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${req.commonName}`,
    issuer: caCert.subject,
    notBefore: new Date(req.now.getTime() - SKEW_MS),
    notAfter: new Date(Math.min(req.now.getTime() + req.ttlMs, caCert.notAfter.getTime())),
    publicKey: keys.publicKey,
    signingKey: await importKeyPem(ca.keyPem),
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension(usages),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      ...(names.length ? [new x509.SubjectAlternativeNameExtension(names)] : []),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) };
}

/** A new key and a certificate signing request for `name`, as an agent or admin makes them. */
export async function createCsr(name: string): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: `CN=${name}`, keys, signingAlgorithm: ALG });
  return { keyPem: await exportKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
}

/** Parses untrusted CSR text; its signature proves the sender holds the key. */
export async function parseCsr(pem: string): Promise<{ name: string; publicKey: x509.PublicKey }> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch {
    throw invalidArgument('the certificate signing request is not a PEM PKCS#10 request; let ctagent make it (ctagent run --join-token ...)');
  }
  if (!(await csr.verify())) throw invalidArgument('the certificate signing request is not signed by its own key; make a new one');
  const cn = /(?:^|,\s*)CN=([^,]+)/.exec(csr.subject)?.[1] ?? '';
  return { name: cn, publicKey: csr.publicKey };
}

const subjectField = (subject: string, field: string): string => new RegExp(`^${field}=(.*)$`, 'm').exec(subject)?.[1] ?? '';

function clusterIdOf(caPem: string): string {
  return subjectField(new X509Certificate(caPem).subject, 'O');
}

/** The identity a certificate of this cluster carries; throws for anything else. */
export function readIdentity(cert: X509Certificate | string | Buffer): Identity {
  const c = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  const ou = subjectField(c.subject, 'OU');
  const role = (Object.keys(ROLE_OU) as Role[]).find((r) => ROLE_OU[r] === ou);
  const name = subjectField(c.subject, 'CN');
  if (!role || !name) throw invalidArgument(`certificate "${c.subject.replace(/\n/g, ', ')}" is no ctnet identity (no ctnet role)`);
  return {
    role,
    name,
    clusterId: subjectField(c.subject, 'O'),
    serial: c.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''),
    notBefore: new Date(c.validFrom),
    notAfter: new Date(c.validTo),
  };
}

/**
 * Checks a peer's certificate against the trusted roots (more than one while a CA rotates):
 * signed by one of them, and valid now. Returns its identity, or why not.
 */
export function verifyPeer(cert: X509Certificate, roots: readonly X509Certificate[], now: Date): Identity | { problem: string } {
  if (!roots.some((r) => cert.checkIssued(r) && cert.verify(r.publicKey))) return { problem: 'its certificate is not signed by this cluster\'s CA (another cluster\'s, or self-signed)' };
  if (now.getTime() < new Date(cert.validFrom).getTime()) return { problem: `its certificate is not valid before ${cert.validFrom} (check the clocks)` };
  if (now.getTime() > new Date(cert.validTo).getTime()) return { problem: `its certificate expired at ${cert.validTo}` };
  try {
    return readIdentity(cert);
  } catch (err) {
    return { problem: (err as Error).message };
  }
}

/** The CA's fingerprint as join tokens carry it: SHA-256 of the DER certificate, base 36, 50 digits. */
export function caDigest(ca: string | Buffer): string {
  const der = new X509Certificate(ca).raw;
  return BigInt(`0x${createHash('sha256').update(der).digest('hex')}`).toString(36).padStart(50, '0');
}

/** Every certificate in a PEM bundle (a chain, or the roots while a CA rotates). */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
