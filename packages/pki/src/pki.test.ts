import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { caDigest, createCsr, createRootCa, crossSign, issueCertificate, parseCsr, readIdentity, splitPem, verifyPeer } from './certs.js';
import { formatJoinToken, hashSecret, newJoinSecret, parseJoinToken, secretMatches } from './token.js';
import { readCredential, writeCredential } from './files.js';

const now = new Date('2026-12-02T10:00:00Z');
const HOUR = 3_600_000;

describe('certificates', () => {
  it('issues a node certificate from a CSR that verifies against its CA and carries the identity', async () => {
    const ca = await createRootCa('cluster-1', now);
    const { csrPem } = await createCsr('h1');
    const csr = await parseCsr(csrPem);
    expect(csr.name).toBe('h1');
    const { certPem, identity } = await issueCertificate(ca, { role: 'node', name: 'H1', publicKey: csr.publicKey, now, ttlMs: HOUR });
    expect(identity).toMatchObject({ role: 'node', name: 'h1', clusterId: 'cluster-1' });
    const checked = verifyPeer(new X509Certificate(certPem), [new X509Certificate(ca.certPem)], new Date(now.getTime() + 1000));
    expect(checked).toMatchObject({ role: 'node', name: 'h1', serial: identity.serial });
  });

  it('refuses another cluster\'s certificate, an expired one and one not yet valid', async () => {
    const ca = await createRootCa('a', now);
    const other = await createRootCa('b', now);
    const { csrPem } = await createCsr('h1');
    const { publicKey } = await parseCsr(csrPem);
    const foreign = new X509Certificate((await issueCertificate(other, { role: 'node', name: 'h1', publicKey, now, ttlMs: HOUR })).certPem);
    const roots = [new X509Certificate(ca.certPem)];
    expect(verifyPeer(foreign, roots, now)).toEqual({ problem: expect.stringMatching(/not signed by this cluster's CA/) });
    const own = new X509Certificate((await issueCertificate(ca, { role: 'node', name: 'h1', publicKey, now, ttlMs: HOUR })).certPem);
    expect(verifyPeer(own, roots, new Date(now.getTime() + 2 * HOUR))).toEqual({ problem: expect.stringMatching(/expired/) });
    expect(verifyPeer(own, roots, new Date(now.getTime() - 2 * HOUR))).toEqual({ problem: expect.stringMatching(/not valid before/) });
    // Both roots trusted (a CA rotation): each verifies.
    expect(verifyPeer(foreign, [...roots, new X509Certificate(other.certPem)], now)).toMatchObject({ name: 'h1' });
  });

  it('a server certificate names the server name clients check; node names must be DNS labels', async () => {
    const ca = await createRootCa('c', now);
    const { csrPem } = await createCsr('x');
    const { publicKey } = await parseCsr(csrPem);
    const m = await issueCertificate(ca, { role: 'manager', name: 'mgr-1', publicKey, now, ttlMs: HOUR, serverName: 'ctnet-manager' });
    expect(new X509Certificate(m.certPem).subjectAltName).toBe('DNS:ctnet-manager');
    expect(readIdentity(m.certPem).role).toBe('manager');
    await expect(issueCertificate(ca, { role: 'node', name: 'bad_name', publicKey, now, ttlMs: HOUR })).rejects.toThrow(/not a valid DNS label/);
    expect(() => readIdentity(ca.certPem)).toThrow(/no ctnet identity/);
  });

  it('refuses a CSR that is not PEM, or not signed by its own key', async () => {
    await expect(parseCsr('hello')).rejects.toThrow(/not a PEM PKCS#10 request/);
    const { csrPem } = await createCsr('h1');
    // The same request with its name changed after signing: h1 -> h2 in the DER.
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
    const at = der.indexOf(Buffer.from('h1'));
    der[at + 1] = '2'.charCodeAt(0);
    const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await expect(parseCsr(forged)).rejects.toThrow(/not signed by its own key/);
  });

  it('cross-signs a new root so a leaf it signs chains to the old root too', async () => {
    const old = await createRootCa('c', now);
    const next = await createRootCa('c', now, 'ctnet root CA 2');
    const cross = new X509Certificate(await crossSign(old, next.certPem, now));
    const { csrPem } = await createCsr('h1');
    const leaf = new X509Certificate((await issueCertificate(next, { role: 'node', name: 'h1', publicKey: (await parseCsr(csrPem)).publicKey, now, ttlMs: HOUR })).certPem);
    const oldRoot = new X509Certificate(old.certPem);
    expect(leaf.checkIssued(cross) && leaf.verify(cross.publicKey)).toBe(true); // same subject and key as the new root
    expect(cross.checkIssued(oldRoot) && cross.verify(oldRoot.publicKey)).toBe(true);
    expect(cross.ca).toBe(true);
    expect(verifyPeer(leaf, [new X509Certificate(next.certPem), oldRoot], now)).toMatchObject({ name: 'h1' });
  });

  it('digests the CA the same way every time, and splits bundles', async () => {
    const ca = await createRootCa('d', now);
    expect(caDigest(ca.certPem)).toMatch(/^[0-9a-z]{50}$/);
    expect(caDigest(ca.certPem)).toBe(caDigest(ca.certPem));
    expect(caDigest(ca.certPem)).not.toBe(caDigest((await createRootCa('d', now)).certPem));
    expect(splitPem(`${ca.certPem}\n${ca.certPem}`)).toHaveLength(2);
  });
});

describe('join tokens', () => {
  it('round-trips and matches only its own secret', () => {
    const secret = newJoinSecret();
    const token = formatJoinToken({ caDigest: 'a'.repeat(50), secret });
    expect(token).toMatch(/^CTNET-1-a{50}-[0-9a-z]{25}$/);
    expect(parseJoinToken(` ${token}\n`)).toEqual({ caDigest: 'a'.repeat(50), secret });
    expect(secretMatches(secret, hashSecret(secret))).toBe(true);
    expect(secretMatches(newJoinSecret(), hashSecret(secret))).toBe(false);
  });

  it('names the fix for a malformed token', () => {
    for (const bad of ['', 'SWMTKN-1-abc-def', `CTNET-2-${'a'.repeat(50)}-${'b'.repeat(25)}`, `CTNET-1-${'a'.repeat(49)}-${'b'.repeat(25)}`]) {
      expect(() => parseJoinToken(bad)).toThrow(/malformed.*ctmgr join-token worker/);
    }
  });
});

describe('credential files', () => {
  it('writes ca, cert and key with mode 0600 in a 0700 directory, and names a missing file', async () => {
    const base = await mkdtemp(join(tmpdir(), 'ctnet-pki-'));
    try {
      const dir = join(base, 'admin');
      await writeCredential(dir, { caPem: 'ca', certPem: 'cert', keyPem: 'key' });
      expect((await stat(dir)).mode & 0o777).toBe(0o700);
      for (const f of ['ca.pem', 'cert.pem', 'key.pem']) expect((await stat(join(dir, f))).mode & 0o777).toBe(0o600);
      expect(await readCredential(dir, 'fix')).toEqual({ caPem: 'ca', certPem: 'cert', keyPem: 'key' });
      await expect(readCredential(join(base, 'none'), 'pass --tls-dir')).rejects.toThrow(/ca\.pem is missing; pass --tls-dir/);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
