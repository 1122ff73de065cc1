import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ctmgr, FakeManager } from '../testing/fake-manager.js';

let fake: FakeManager;
beforeEach(() => {
  fake = new FakeManager();
});

describe('ctmgr join-token', () => {
  it('prints how to join, or only the token with -q; --rotate asks for a new one', async () => {
    const r = await ctmgr(fake, ['join-token', 'worker']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(/CTNET_JOIN_TOKEN=CTNET-1-a{50}-b{25} ctagent run --manager MANAGER:4700/);
    const q = await ctmgr(fake, ['join-token', '--rotate', '-q', 'worker']);
    expect(q.out).toBe(`CTNET-1-${'a'.repeat(50)}-${'b'.repeat(25)}\n`);
    expect(fake.calls.filter((c) => c.method === 'joinToken').map((c) => c.args[0])).toEqual([false, true]);
  });

  it('names the only kind of token there is', async () => {
    const r = await ctmgr(fake, ['join-token', 'manager']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/no "manager" token; agents join with "ctmgr join-token worker"/);
  });
});

describe('ctmgr admin-cert', () => {
  it('makes the key locally, sends only a CSR for NAME, and writes the credential 0600', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ctnet-admin-cert-'));
    try {
      const out = join(dir, 'alice');
      const r = await ctmgr(fake, ['admin-cert', '--name', 'alice', '--out', out]);
      expect(r).toMatchObject({ code: 0, out: `${out}\n` });
      const [call] = fake.calls.filter((c) => c.method === 'issueAdminCert');
      expect(call!.args[0]).toBe('alice');
      expect(call!.args[1]).toMatch(/BEGIN CERTIFICATE REQUEST/);
      expect(await readFile(join(out, 'key.pem'), 'utf8')).toMatch(/BEGIN PRIVATE KEY/);
      expect(String(call!.args[1])).not.toMatch(/PRIVATE KEY/);
      expect(await readFile(join(out, 'cert.pem'), 'utf8')).toBe('CERT');
      expect((await stat(join(out, 'key.pem'))).mode & 0o777).toBe(0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('revokes with rm NAME, and refuses a half-given command', async () => {
    expect((await ctmgr(fake, ['admin-cert', 'rm', 'alice'])).out).toBe('alice: revoked 1 certificate\n');
    const bad = await ctmgr(fake, ['admin-cert', '--name', 'alice']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/admin-cert needs --name NAME and --out DIR/);
  });
});

describe('ctmgr ca rotate', () => {
  it('says what finished, and what still waits with the way on', async () => {
    const waiting = await ctmgr(fake, ['ca', 'rotate']);
    expect(waiting.code).toBe(1);
    expect(waiting.err).toMatch(/^ctmgr: CA rotation under way: 2 of 3 nodes renewed; waiting for h3 \(down\?\).*ctmgr ca rotate --force/);
    const done = await ctmgr(fake, ['ca', 'rotate', '--force']);
    expect(done).toMatchObject({ code: 0, err: '' });
    expect(done.out).toMatch(/CA rotated: 2 of 3 nodes renewed from the new root; the old root is no longer trusted/);
    expect(done.out).toMatch(/digest d{50}/);
  });
});
