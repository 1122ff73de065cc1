import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import * as proto from '@ctnet/proto';
import { AgentServiceClient, clientCredentials, clientOptions, ManagerServiceClient, type NodeCertificate } from '@ctnet/proto';
import { createCsr, createRootCa, issueCertificate, parseCsr, parseJoinToken } from '@ctnet/pki';
import { startTestEtcd, type TestEtcd } from '@ctnet/store';
import {
  adminCredential,
  apiClient,
  connectAgent,
  CTMGR,
  REPO,
  forgetNodeCredential,
  nodeCredential,
  startManagerProcess,
  waitUntil,
  type Api,
  type ManagerProcess,
} from './harness.js';

// Mutual TLS on every call: who may call what, join tokens, revocation, renewal, restarts.
let etcd: TestEtcd;
let mgr: ManagerProcess;
let admin: Api & { close(): void };

const codeOf = (p: Promise<unknown>) => p.then(() => 'OK', (e: ServiceError) => `${status[e.code]}: ${e.details}`);
const join_ = (m: { addr: string }, caPem: string, secret: string, csrPem: string) => {
  const client = new AgentServiceClient(m.addr, clientCredentials({ caPem }), clientOptions());
  return new Promise<NodeCertificate>((resolve, reject) =>
    client.join({ secret, csrPem }, new Metadata(), { deadline: Date.now() + 10_000 }, (err, r) => (client.close(), err ? reject(err) : resolve(r))),
  );
};
const ctmgr = (args: string[], env: Record<string, string> = {}) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CTMGR, '--manager', mgr.addr, ...args], { env: { ...process.env, CTNET_TLS_DIR: '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });

beforeAll(async () => {
  etcd = await startTestEtcd();
  mgr = await startManagerProcess({ etcd: etcd.endpoint, args: ['--node-cert-ttl=6s', '--node-ttl=2s'] });
  admin = apiClient(mgr);
}, 60_000);
afterAll(async () => {
  admin?.close();
  await mgr?.stop();
  await etcd?.stop();
});

describe('cluster security', () => {
  it('first start writes the admin credential 0600 in <data-dir>/admin; the CLI works with it and names the fix without it', async () => {
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) expect((await stat(join(mgr.adminDir, f))).mode & 0o777).toBe(0o600);
    const ok = await ctmgr(['network', 'ls'], { CTNET_TLS_DIR: mgr.adminDir });
    expect(ok.code).toBe(0);
    const none = await ctmgr(['--tls-dir', join(tmpdir(), 'no-such-ctnet-dir'), 'network', 'ls']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^ctmgr: no admin credential: .*ca\.pem is missing; .*--tls-dir DIR/);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses plaintext, no certificate, a self-signed one and another cluster\'s, for every admin verb', async () => {
    const { caPem } = adminCredential(mgr);
    const other = await createRootCa('other-cluster', new Date());
    const { keyPem, csrPem } = await createCsr('admin');
    const foreign = await issueCertificate(other, { role: 'admin', name: 'admin', publicKey: (await parseCsr(csrPem)).publicKey, now: new Date(), ttlMs: 3_600_000 });
    const clients = {
      plaintext: new ManagerServiceClient(mgr.addr, credentials.createInsecure()),
      'no certificate': new ManagerServiceClient(mgr.addr, clientCredentials({ caPem }), clientOptions()),
      "another cluster's": new ManagerServiceClient(mgr.addr, clientCredentials({ caPem, certPem: foreign.certPem, keyPem }), clientOptions()),
      'self-signed': new ManagerServiceClient(mgr.addr, clientCredentials({ caPem, certPem: other.certPem, keyPem: other.keyPem }), clientOptions()),
    };
    for (const [what, client] of Object.entries(clients)) {
      for (const method of Object.keys(ManagerServiceClient.service)) {
        const fn = (client as unknown as Record<string, Function>)[method]!;
        const request = (proto as unknown as Record<string, { fromPartial(o: object): object }>)[`${method[0]!.toUpperCase()}${method.slice(1)}Request`]!.fromPartial({});
        const got = await codeOf(new Promise((resolve, reject) => fn.call(client, request, new Metadata(), { deadline: Date.now() + 5000 }, (e: ServiceError | null, r: unknown) => (e ? reject(e) : resolve(r)))));
        expect(got, `${what} calling ${method}`).toMatch(what === 'plaintext' ? /^UNAVAILABLE/ : /^UNAUTHENTICATED: .*(no valid client certificate|not signed by this cluster)/);
      }
      client.close();
    }
    expect(mgr.output()).toMatch(/listNetworks refused peer="127\.0\.0\.1:\d+"/);
  });

  it('a node certificate cannot call the admin API, and an admin certificate cannot open an agent stream', async () => {
    const node = apiClient(mgr, await nodeCredential(mgr, 'n1'));
    expect(await codeOf(node.listNetworks({}))).toMatch(/^PERMISSION_DENIED: a node certificate \(n1\) cannot call the admin API/);
    expect(await codeOf(node.runContainer({ name: 'x', node: 'n2', network: 'bridge', cmd: ['sleep', '1'], attachPid: 1 }))).toMatch(/^PERMISSION_DENIED: node n1 may only attach its own processes/);
    // A runtime's namespace (the CNI plugin) likewise: on itself only, and never from the admin API.
    expect(await codeOf(node.runContainer({ name: 'x', node: 'n2', network: 'bridge', cmd: ['cni'], attachNetns: '/proc/1/ns/net' }))).toMatch(/^PERMISSION_DENIED: node n1 may only attach its own processes and namespaces/);
    // What waitConverged needs, and no more: the node list is readable, the rest is not.
    expect((await node.listNodes({})).nodes).toBeDefined();
    node.close();
    expect(await codeOf(admin.runContainer({ name: 'x', node: 'n1', network: 'bridge', cmd: ['sleep', '1'], attachPid: 1 }))).toMatch(/^PERMISSION_DENIED: attaching a process or a namespace is done on its host only/);
    expect(await codeOf(admin.runContainer({ name: 'x', node: 'n1', network: 'bridge', cmd: ['cni'], attachNetns: '/proc/1/ns/net', cni: { containerId: 'c', ifname: 'eth0' } }))).toMatch(/^PERMISSION_DENIED: attaching a process or a namespace/);
    const a = new AgentServiceClient(mgr.addr, clientCredentials(adminCredential(mgr)), clientOptions());
    const call = a.connect();
    const err = await new Promise<ServiceError>((resolve) => call.on('error', resolve));
    expect(err.code).toBe(status.PERMISSION_DENIED);
    a.close();
  });

  it('a node\'s Docker plugin may make Docker endpoints on itself only, and make and remove only networks made through Docker', async () => {
    const node = apiClient(mgr, await nodeCredential(mgr, 'n1'));
    expect(await codeOf(node.createEndpoint({ network: 'x', node: 'n2', name: 'dk-1', origin: 'docker' }))).toMatch(/^PERMISSION_DENIED: node n1's Docker plugin may only create Docker endpoints on n1/);
    expect(await codeOf(node.createEndpoint({ network: 'x', node: 'n1', name: 'dk-1' }))).toMatch(/^PERMISSION_DENIED/);
    expect(await codeOf(node.createNetwork({ name: 'dnet', driver: 'overlay' }))).toMatch(/^PERMISSION_DENIED: .*labelled ctnet.origin=docker/);
    expect(await codeOf(node.createNetwork({ name: 'dnet', driver: 'macvlan', labels: { 'ctnet.origin': 'docker' } }))).toMatch(/^PERMISSION_DENIED/);
    const made = await node.createNetwork({ name: 'dnet', driver: 'overlay', subnet: '10.201.0.0/24', labels: { 'ctnet.origin': 'docker' } });
    expect(made.name).toBe('dnet');
    const anet = await admin.createNetwork({ name: 'anet', subnet: '10.202.0.0/24' });
    expect(await codeOf(node.removeNetwork({ nameOrId: 'anet' }))).toMatch(/^PERMISSION_DENIED: network anet was created with ctmgr, not through Docker; remove it with "ctmgr network rm anet"/);
    // Spelled as the handler would also accept it (an id prefix, a padded name): the same answer.
    expect(await codeOf(node.removeNetwork({ nameOrId: anet.id.slice(0, 6) }))).toMatch(/^PERMISSION_DENIED/);
    expect(await codeOf(node.removeNetwork({ nameOrId: ' anet ' }))).toMatch(/^PERMISSION_DENIED/);
    // An endpoint that is not a Docker one of n1 cannot be changed or removed by n1.
    const stream = connectAgent(mgr, { name: 'n1', addr: '192.168.91.21' }, 0, true);
    await waitUntil(async () => (await admin.listNodes({})).nodes.some((n) => n.node?.name === 'n1'), 10_000);
    await admin.createEndpoint({ network: 'dnet', node: 'n1', name: 'plain' });
    expect(await codeOf(node.updateEndpoint({ network: 'dnet', name: 'plain', aliases: ['x'], setAliases: true }))).toMatch(/^PERMISSION_DENIED: node n1's Docker plugin may only change the Docker endpoints of n1/);
    expect(await codeOf(node.deleteEndpoint({ network: 'dnet', name: 'plain' }))).toMatch(/^PERMISSION_DENIED/);
    expect(await codeOf(node.deleteEndpoint({ network: made.id.slice(0, 6), name: ' plain' }))).toMatch(/^PERMISSION_DENIED/);
    expect(await codeOf(node.updateEndpoint({ network: 'dnet', name: 'nobody', aliases: [], setAliases: true }))).toMatch(/^NOT_FOUND/);
    await admin.deleteEndpoint({ network: 'dnet', name: 'plain' });
    expect(await codeOf(node.removeNetwork({ nameOrId: 'dnet' }))).toBe('OK');
    await admin.removeNetwork({ nameOrId: 'anet' });
    stream.close();
    node.close();
  });

  it('an agent whose certificate says n2 cannot say Hello as n3', async () => {
    const liar = connectAgent(mgr, { name: 'n3', addr: '192.168.91.3' }, 0, false, { as: 'n2' });
    await waitUntil(() => liar.errors.length > 0, 10_000);
    expect(liar.errors[0]).toMatchObject({ code: status.PERMISSION_DENIED, details: expect.stringMatching(/certificate is for node n2; it cannot register as n3/) });
    liar.close();
    expect((await admin.listNodes({})).nodes.map((n) => n.node?.name)).not.toContain('n3');
  });

  it('join: a wrong or malformed secret, a name that is no DNS label or belongs to a ready node are refused; rotation retires the old token only for new joins', async () => {
    const { caPem } = adminCredential(mgr);
    const token = (await admin.joinToken({ role: 'worker' })).token;
    expect(token).toMatch(/^CTNET-1-[0-9a-z]{50}-[0-9a-z]{25}$/);
    const { secret } = parseJoinToken(token);
    const csr = (name: string) => createCsr(name).then((c) => c.csrPem);
    expect(await codeOf(join_(mgr, caPem, 'x'.repeat(25), await csr('j1')))).toMatch(/^UNAUTHENTICATED: the join token is not valid for this cluster/);
    expect(await codeOf(join_(mgr, caPem, secret, await csr('bad_name')))).toMatch(/^INVALID_ARGUMENT: node name "bad_name" is not a valid DNS label/);
    expect(await codeOf(join_(mgr, caPem, secret, 'not a csr'))).toMatch(/^INVALID_ARGUMENT: the certificate signing request is not a PEM/);
    const ready = connectAgent(mgr, { name: 'j2', addr: '192.168.91.2' }, 0, true);
    await waitUntil(() => ready.messages.length > 0, 10_000);
    expect(await codeOf(join_(mgr, caPem, secret, await csr('j2')))).toMatch(/^ALREADY_EXISTS: node j2 is already in the cluster; .*ctmgr node rm j2/);

    const rotated = (await admin.joinToken({ role: 'worker', rotate: true })).token;
    expect(rotated).not.toBe(token);
    expect(await codeOf(join_(mgr, caPem, secret, await csr('j3')))).toMatch(/^UNAUTHENTICATED: the join token is not valid/);
    expect(await codeOf(join_(mgr, caPem, parseJoinToken(rotated).secret, await csr('j3')))).toBe('OK');
    // the node that joined with the old token is unaffected
    ready.ack(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(ready.errors).toEqual([]);
    ready.close();
  });

  it('a real agent given a token whose CA digest is not this cluster\'s sends nothing and exits with the problem named', async () => {
    const { secret } = parseJoinToken((await admin.joinToken({ role: 'worker' })).token);
    const dir = await mkdtemp(join(tmpdir(), 'ctnet-wrongca-'));
    const logFrom = mgr.output().length;
    try {
      const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
        const child = spawn(process.execPath, [join(REPO, 'packages/agent/dist/bin/ctagent'), 'run', '--manager', mgr.addr, '--advertise-addr', '127.0.0.1', '--node-name', 'w1', '--data-dir', dir], {
          env: { ...process.env, CTNET_JOIN_TOKEN: `CTNET-1-${'0'.repeat(50)}-${secret}` },
        });
        let err = '';
        child.stderr.on('data', (c: Buffer) => (err += c.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.on('exit', (code) => (clearTimeout(timer), resolve({ code, err })));
      });
      expect(r.code).not.toBe(0);
      expect(r.err).toMatch(/does not hold the CA this join token names .*nothing else was sent/);
      expect(mgr.output().slice(logFrom)).not.toMatch(/join refused|node joined/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('node rm revokes the node\'s certificate: its stream ends and it cannot connect again without a token', async () => {
    const n = connectAgent(mgr, { name: 'r1', addr: '192.168.91.10' }, 0, true);
    await waitUntil(() => n.messages.length > 0, 10_000);
    n.close();
    await waitUntil(async () => (await admin.listNodes({})).nodes.find((x) => x.node?.name === 'r1')?.status === 'down', 15_000);
    // down is not gone: nobody else can join under its name (it would take over its traffic)
    const { secret } = parseJoinToken((await admin.joinToken({ role: 'worker' })).token);
    const { csrPem } = await createCsr('r1');
    expect(await codeOf(join_(mgr, adminCredential(mgr).caPem, secret, csrPem))).toMatch(/^ALREADY_EXISTS: node r1 is already in the cluster/);
    await admin.removeNode({ name: 'r1' });
    const again = connectAgent(mgr, { name: 'r1', addr: '192.168.91.10' });
    await waitUntil(() => again.errors.length > 0, 10_000);
    expect(again.errors[0]).toMatchObject({ code: status.UNAUTHENTICATED, details: expect.stringMatching(/certificate of node r1 was revoked.*join again with a token/) });
    again.close();
    forgetNodeCredential(mgr, 'r1');
    const rejoined = connectAgent(mgr, { name: 'r1', addr: '192.168.91.10' });
    await waitUntil(() => rejoined.messages.length > 0, 10_000);
    rejoined.close();
  });

  it('admin-cert issues a credential that works and admin-cert rm revokes it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ctnet-alice-'));
    try {
      const out = join(dir, 'alice');
      expect((await ctmgr(['admin-cert', '--name', 'alice', '--out', out], { CTNET_TLS_DIR: mgr.adminDir })).code).toBe(0);
      expect((await stat(join(out, 'key.pem'))).mode & 0o777).toBe(0o600);
      expect((await ctmgr(['--tls-dir', out, 'node', 'ls'])).code).toBe(0);
      expect((await ctmgr(['admin-cert', 'rm', 'alice'], { CTNET_TLS_DIR: mgr.adminDir })).stdout).toMatch(/alice: revoked 1 certificate/);
      const refused = await ctmgr(['--tls-dir', out, 'node', 'ls']);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/admin certificate "alice" was revoked/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('renews a node certificate with the one it holds; an expired one is refused', async () => {
    const cred = await nodeCredential(mgr, 'e1');
    const client = new AgentServiceClient(mgr.addr, clientCredentials(cred), clientOptions());
    const { keyPem, csrPem } = await createCsr('e1');
    const renewed = await new Promise<NodeCertificate>((resolve, reject) => client.renew({ csrPem }, (e, r) => (e ? reject(e) : resolve(r))));
    client.close();
    expect(renewed.certPem).not.toBe(cred.certPem);
    const fresh = connectAgent(mgr, { name: 'e1', addr: '192.168.91.20' });
    await waitUntil(() => fresh.messages.length > 0, 10_000);
    fresh.close();
    const other = await createCsr('e2');
    const forged = new AgentServiceClient(mgr.addr, clientCredentials({ ...cred, certPem: renewed.certPem, keyPem }), clientOptions());
    expect(await codeOf(new Promise((resolve, reject) => forged.renew({ csrPem: other.csrPem }, (e, r) => (e ? reject(e) : resolve(r)))))).toMatch(/^INVALID_ARGUMENT: the certificate signing request is for "e2", not "e1"/);
    forged.close();
    // --node-cert-ttl=6s: after it, the first certificate is refused
    await new Promise((r) => setTimeout(r, 6_500));
    const late = new AgentServiceClient(mgr.addr, clientCredentials(cred), clientOptions());
    const err = await new Promise<ServiceError>((resolve) => late.renew({ csrPem }, (e) => resolve(e!)));
    expect(err.code === status.UNAUTHENTICATED || err.code === status.UNAVAILABLE).toBe(true);
    expect(err.details).toMatch(/expired|certificate/i);
    late.close();
  }, 30_000);

  it('a second manager on the same etcd reuses the CA; a manager restart keeps its credential and every identity', async () => {
    const first = adminCredential(mgr);
    const dir = await mkdtemp(join(tmpdir(), 'ctnet-mgr2-'));
    try {
      const m2 = await startManagerProcess({ etcd: etcd.endpoint, args: [`--data-dir=${dir}`] });
      const own = adminCredential(m2);
      expect(own.caPem).toBe(first.caPem);
      expect(own.certPem).not.toBe(first.certPem);
      const cred = await nodeCredential(m2, 'k1'); // from m2: mgr's node certificates live 6 s
      expect(cred.caPem).toBe(first.caPem);
      // a rotation on one manager holds on every other at once
      const old = parseJoinToken((await admin.joinToken({ role: 'worker' })).token).secret;
      await admin.joinToken({ role: 'worker', rotate: true });
      expect(await codeOf(join_(m2, first.caPem, old, (await createCsr('k9')).csrPem))).toMatch(/^UNAUTHENTICATED: the join token is not valid/);
      await m2.stop();
      const m3 = await startManagerProcess({ etcd: etcd.endpoint, args: [`--data-dir=${dir}`] });
      expect(adminCredential(m3)).toEqual(own); // restarted: the same credential, not a new one
      const api = apiClient(m3, first);
      expect(await codeOf(api.listNodes({}))).toBe('OK');
      api.close();
      const node = connectAgent(m3, { name: 'k1', addr: '192.168.91.30' });
      await waitUntil(() => node.messages.length > 0, 10_000, () => JSON.stringify(node.errors) + m3.output());
      node.close();
      await m3.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('CA rotation', () => {
  let etcd2: TestEtcd;
  let m: ManagerProcess;
  beforeAll(async () => {
    etcd2 = await startTestEtcd();
    m = await startManagerProcess({ etcd: etcd2.endpoint });
  }, 60_000);
  afterAll(async () => {
    await m?.stop();
    await etcd2?.stop();
  });

  it('rolls the root with a cross-signed overlap: old and new credentials work while it runs, agents are told to renew, then the old root is dropped', async () => {
    const oldAdmin = adminCredential(m);
    const oldToken = (await apiClient(m, oldAdmin).joinToken({ role: 'worker' })).token;
    const agent = connectAgent(m, { name: 'a1', addr: '192.168.92.1' }, 0, true);
    await waitUntil(() => agent.messages.length > 0, 10_000);
    const cred = await nodeCredential(m, 'a1');

    const api = apiClient(m, oldAdmin);
    const rotation = api.rotateCa({});
    // the connected agent is told to renew; a client that trusts only the old root still gets through
    await waitUntil(() => agent.messages.some((x) => x.msg?.$case === 'renewNow'), 10_000, () => m.output());
    expect(await codeOf(apiClient(m, oldAdmin).listNodes({}))).toBe('OK');
    const { keyPem, csrPem } = await createCsr('a1');
    const client = new AgentServiceClient(m.addr, clientCredentials(cred), clientOptions());
    const renewed = await new Promise<NodeCertificate>((resolve, reject) => client.renew({ csrPem }, (e, r) => (e ? reject(e) : resolve(r))));
    client.close();
    expect(renewed.caPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(2); // both roots while it runs
    const done = await rotation;
    expect(done).toMatchObject({ finished: true, nodesRenewed: 1, nodesTotal: 1, pending: [] });
    api.close();

    // after: the old root is gone: the old admin certificate is refused, the renewed node
    // certificate and the manager's re-issued admin credential work, the token changed
    expect(await codeOf(apiClient(m, oldAdmin).listNodes({}))).toMatch(/^(UNAUTHENTICATED|UNAVAILABLE)/);
    const newAdmin = adminCredential(m);
    expect(newAdmin.certPem).not.toBe(oldAdmin.certPem);
    expect(await codeOf(apiClient(m, newAdmin).listNodes({}))).toBe('OK');
    const newToken = (await apiClient(m, newAdmin).joinToken({ role: 'worker' })).token;
    expect(parseJoinToken(newToken).caDigest).not.toBe(parseJoinToken(oldToken).caDigest);
    agent.close();
    await waitUntil(async () => (await apiClient(m, newAdmin).listNodes({})).nodes.find((n) => n.node?.name === 'a1')?.status === 'down', 20_000);
    const again = new AgentServiceClient(m.addr, clientCredentials({ caPem: renewed.caPem, certPem: renewed.certPem, keyPem }), clientOptions());
    const call = again.connect();
    const first = await new Promise<string>((resolve) => {
      call.on('data', (x: { msg?: { $case: string } }) => resolve(x.msg?.$case ?? ''));
      call.on('error', (e: ServiceError) => resolve(`error ${e.details}`));
      call.write({ msg: { $case: 'hello', value: { node: { name: 'a1', addr: '192.168.92.1', hostname: 'a1', labels: {}, routes: [], registeredAt: '', problems: {}, dockerNetworks: {} }, resumeRevision: 0 } } });
    });
    expect(first).toBe('snapshot');
    call.cancel();
    again.close();
  }, 60_000);
});
