import { UsageError } from '../errors.js';
import { defineCommand, type OptionSpecs, type VerbSpec } from '../args.js';

const JOIN_TOKEN = {
  path: 'join-token',
  summary: 'Print the token agents join with (ctagent run --join-token TOKEN)',
  operands: 'worker',
  min: 1,
  max: 1,
  options: {
    rotate: { type: 'boolean', help: 'Make a new token first: the old one stops working for new joins (joined nodes are unaffected)' },
    quiet: { type: 'boolean', short: 'q', help: 'Print the token only' },
  },
} as const satisfies VerbSpec<OptionSpecs>;

export const joinToken = defineCommand(JOIN_TOKEN, async ({ values, positionals }, { client, out }) => {
  if (positionals[0] !== 'worker') throw new UsageError(`there is no "${positionals[0]}" token; agents join with "ctmgr join-token worker"`, 'ctmgr join-token');
  const token = await client.joinToken(values.rotate ?? false);
  if (values.quiet) out.write(`${token}\n`);
  else {
    // In the environment rather than on the command line, where every local user can read it (ps).
    out.write(`${values.rotate ? 'Rotated the worker join token. ' : ''}To add a host to this cluster, run on it:\n\n    CTNET_JOIN_TOKEN=${token} ctagent run --manager MANAGER:4700 --advertise-addr IP\n\n`);
  }
  return 0;
});

const ADMIN_CERT = {
  path: 'admin-cert',
  summary: 'Issue an admin credential (--name NAME --out DIR), or revoke one (admin-cert rm NAME)',
  operands: '[rm NAME]',
  min: 0,
  max: 2,
  options: {
    name: { type: 'string', value: 'NAME', help: 'Who the credential is for (a DNS label, e.g. alice)' },
    out: { type: 'string', value: 'DIR', help: 'Directory to write ca.pem, cert.pem and key.pem to (made 0700, files 0600)' },
  },
} as const satisfies VerbSpec<OptionSpecs>;

export const adminCert = defineCommand(ADMIN_CERT, async ({ values, positionals }, { client, out }) => {
  if (positionals[0] === 'rm') {
    const name = positionals[1];
    if (!name || values.name || values.out) throw new UsageError('revoke with "ctmgr admin-cert rm NAME"', 'ctmgr admin-cert');
    const n = await client.revokeAdminCert(name);
    out.write(n > 0 ? `${name}: revoked ${n} certificate${n === 1 ? '' : 's'}\n` : `${name}: no certificate was issued under this name\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected "${positionals[0]}"; issue with --name NAME --out DIR, or revoke with "admin-cert rm NAME"`, 'ctmgr admin-cert');
  if (!values.name || !values.out) throw new UsageError('admin-cert needs --name NAME and --out DIR', 'ctmgr admin-cert');
  // The key is made here and never sent: the manager signs a request for it. (The PKI code is
  // loaded here only: it costs every other verb a quarter of a second at start-up.)
  const { createCsr, writeCredential } = await import('@ctnet/pki');
  const { keyPem, csrPem } = await createCsr(values.name);
  const { certPem, caPem } = await client.issueAdminCert(values.name, csrPem);
  await writeCredential(values.out, { caPem, certPem, keyPem });
  out.write(`${values.out}\n`);
  return 0;
});

const CA_ROTATE = {
  path: 'ca rotate',
  summary: 'Roll the cluster root CA: every node renews from a new root, then the old one is dropped',
  operands: '',
  min: 0,
  max: 0,
  options: {
    force: { type: 'boolean', help: 'Finish now, even if some nodes have not renewed (they must join again with a token)' },
  },
} as const satisfies VerbSpec<OptionSpecs>;

export const caRotate = defineCommand(CA_ROTATE, async ({ values }, { client, out, err }) => {
  const r = await client.rotateCa(values.force ?? false);
  if (r.finished) {
    out.write(`CA rotated: ${r.nodesRenewed} of ${r.nodesTotal} nodes renewed from the new root; the old root is no longer trusted.\n`);
    if (r.pending.length) out.write(`Not renewed (they must join again with a token): ${r.pending.join(', ')}\n`);
    out.write(`Join tokens now carry digest ${r.digest}: print one with "ctmgr join-token worker". Admin credentials made with "ctmgr admin-cert" before the rotation must be made again.\n`);
    return 0;
  }
  err.write(`ctmgr: CA rotation under way: ${r.nodesRenewed} of ${r.nodesTotal} nodes renewed; waiting for ${r.pending.join(', ')} (down?). Run "ctmgr ca rotate" again to wait more, or "ctmgr ca rotate --force" to finish without them\n`);
  return 1;
});
