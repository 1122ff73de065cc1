import { CtnetError, ErrorCode } from '@ctnet/core';
import { toServiceError } from '@ctnet/manager';
import { type CreateNetworkRequest, MANAGER_SERVER_NAME, type ManagerServiceServer, ManagerServiceService, ServerCertificates, serverCredentials } from '@ctnet/proto';
import { createCsr, createRootCa, issueCertificate, parseCsr, writeCredential } from '@ctnet/pki';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Metadata,
  Server,
  type ServiceError,
  status,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorFromGrpc, GrpcManagerApi } from './grpc-api.js';
import { wireContainerDetail, wireNetwork, wireNodeStatus } from './testing/fake-manager.js';

const site = { method: 'ListNodes', address: '127.0.0.1:4700', timeoutMs: 15_000 };

function grpcError(code: status, details: string): ServiceError {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata: new Metadata() });
}

describe('errorFromGrpc', () => {
  it('keeps the manager message and maps the status back to the CtnetError code', () => {
    const e = errorFromGrpc(grpcError(status.ALREADY_EXISTS, 'network "blue" already exists; pick another name'), site);
    expect(e.code).toBe(ErrorCode.AlreadyExists);
    expect(e.message).toBe('network "blue" already exists; pick another name');
  });

  it('says the manager is unreachable when grpc-js found no connection', () => {
    const e = errorFromGrpc(
      grpcError(status.UNAVAILABLE, 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:4700. Resolution note: '),
      site,
    );
    expect(e.code).toBe(ErrorCode.Unavailable);
    expect(e.message).toBe(
      'cannot reach the manager at 127.0.0.1:4700: connection refused (is "ctmgr serve" running? set --manager or CTNET_MANAGER)',
    );
    expect(errorFromGrpc(grpcError(status.UNAVAILABLE, 'Name resolution failed for target dns:nohost:4700'), site).message).toMatch(
      /^cannot reach the manager at 127\.0\.0\.1:4700: name not resolved \(/,
    );
  });

  it('passes an UNAVAILABLE from the manager itself through (e.g. etcd down)', () => {
    const e = errorFromGrpc(grpcError(status.UNAVAILABLE, 'etcd at 127.0.0.1:2379 is unavailable; check the etcd service'), site);
    expect(e.code).toBe(ErrorCode.Unavailable);
    expect(e.message).toBe('etcd at 127.0.0.1:2379 is unavailable; check the etcd service');
  });

  it('explains a client-side deadline with the method and the timeout', () => {
    const e = errorFromGrpc(grpcError(status.DEADLINE_EXCEEDED, 'Deadline exceeded after 15.002s,LB pick: 0.001s'), site);
    expect(e.code).toBe(ErrorCode.DeadlineExceeded);
    expect(e.message).toBe(
      'the manager at 127.0.0.1:4700 did not answer ListNodes within 15s; check that it is running and healthy, then retry',
    );
  });

  it('recognises a server that is not a ctmgr manager', () => {
    expect(errorFromGrpc(grpcError(status.UNIMPLEMENTED, 'Received HTTP status code 404'), site).message).toBe(
      'the server at 127.0.0.1:4700 answered HTTP 404; point --manager or CTNET_MANAGER at a "ctmgr serve" of the same ctnet version',
    );
    expect(errorFromGrpc(grpcError(status.UNIMPLEMENTED, ''), site).message).toMatch(/does not implement ListNodes;/);
  });
});

describe('errorFromGrpc with the manager\'s ctnet-code metadata', () => {
  it('takes the code from the metadata and the message from details', () => {
    const e = grpcError(status.UNAVAILABLE, 'Connection dropped while writing to etcd; retry');
    e.metadata.set('ctnet-code', 'ABORTED');
    expect(errorFromGrpc(e, site)).toMatchObject({ code: ErrorCode.Aborted, message: 'Connection dropped while writing to etcd; retry' });
  });

  it('round-trips every code through the manager adapter (toServiceError)', () => {
    for (const code of Object.values(ErrorCode)) {
      const sent = toServiceError(new CtnetError(code, `problem ${code}; do the fix`));
      const received = grpcError(sent.code as status, sent.details ?? '');
      for (const [k, v] of Object.entries(sent.metadata?.getMap() ?? {})) received.metadata.set(k, v as string);
      expect(errorFromGrpc(received, site)).toMatchObject({ code, message: `problem ${code}; do the fix` });
    }
  });
});

describe('GrpcManagerApi against a real gRPC server', () => {
  const server = new Server();
  const seen: CreateNetworkRequest[] = [];
  let address = '';
  let tlsDir = '';

  // Only some handlers: grpc-js answers the others with UNIMPLEMENTED.
  const handlers: Partial<ManagerServiceServer> = {
    createNetwork: (call, cb) => {
      seen.push(call.request);
      cb(null, wireNetwork({ name: call.request.name, labels: call.request.labels }));
    },
    listNodes: (_call, cb) => {
      cb(null, { nodes: [wireNodeStatus('host1', { lag: 5, ackedRevision: 37 })], stateRevision: 42 });
    },
    inspectNetwork: (call, cb) => {
      const e = new CtnetError(ErrorCode.NotFound, `network "${call.request.nameOrId}" not found; list networks with "ctmgr network ls"`);
      cb(toServiceError(e));
    },
    runContainer: (call, cb) => {
      cb(null, wireContainerDetail({ name: call.request.name, cmd: call.request.cmd, env: call.request.env }));
    },
    listContainers: (call, cb) => {
      cb(null, { containers: [wireContainerDetail({ node: call.request.node })] });
    },
    listNetworks: () => {
      // never answers: the client's deadline must end the call
    },
  };

  beforeAll(async () => {
    // A cluster CA of its own: the server gets a manager certificate, the client an admin one.
    const now = new Date();
    const ca = await createRootCa('test', now);
    const server_ = await createCsr('x');
    const serverCert = await issueCertificate(ca, { role: 'manager', name: 'm', publicKey: (await parseCsr(server_.csrPem)).publicKey, now, ttlMs: 3_600_000, serverName: MANAGER_SERVER_NAME });
    const certs = new ServerCertificates();
    certs.set(`${serverCert.certPem.trim()}\n${ca.certPem.trim()}\n`, server_.keyPem, ca.certPem);
    const admin = await createCsr('admin');
    const adminCert = await issueCertificate(ca, { role: 'admin', name: 'admin', publicKey: (await parseCsr(admin.csrPem)).publicKey, now, ttlMs: 3_600_000 });
    tlsDir = await mkdtemp(join(tmpdir(), 'ctnet-cli-tls-'));
    await writeCredential(tlsDir, { caPem: ca.certPem, certPem: adminCert.certPem, keyPem: admin.keyPem });
    server.addService(ManagerServiceService, handlers as UntypedServiceImplementation);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', serverCredentials(certs), (err, p) => (err ? reject(err) : resolve(p))),
    );
    address = `127.0.0.1:${port}`;
  });
  afterAll(async () => {
    server.forceShutdown();
    await rm(tlsDir, { recursive: true, force: true });
  });

  it('round-trips a request and a response', async () => {
    const api = new GrpcManagerApi(address, undefined, tlsDir);
    try {
      const net = await api.createNetwork({
        name: 'blue', driver: '', subnet: '', gateway: '', ipRange: '', auxAddresses: { r: '10.0.0.9' },
        attachable: true, internal: false, options: {}, labels: { env: 'dev' },
      });
      expect(net).toMatchObject({ name: 'blue', labels: { env: 'dev' } });
      expect(seen.at(-1)).toMatchObject({ name: 'blue', attachable: true, auxAddresses: { r: '10.0.0.9' } });
      const nodes = await api.listNodes();
      expect(nodes.stateRevision).toBe(42);
      expect(nodes.nodes[0]).toMatchObject({ status: 'ready', lag: 5, ackedRevision: 37, node: { name: 'host1' } });
    } finally {
      api.close();
    }
  });

  it('round-trips the container calls, unwrapping the list', async () => {
    const api = new GrpcManagerApi(address, undefined, tlsDir);
    try {
      const run = await api.runContainer({
        name: 'web', network: 'blue', node: '', ip: '', mac: '', aliases: [], cmd: ['sh', '-c', 'echo --name'],
        env: { A: '1' }, hostname: '', dns: [], dnsSearch: [], attachPid: 0, publish: [], publishAll: false, expose: [], links: [],
      });
      expect(run.container).toMatchObject({ name: 'web', cmd: ['sh', '-c', 'echo --name'], env: { A: '1' } });
      expect(run.endpoints[0]).toMatchObject({ container: run.container?.id });
      const list = await api.listContainers({ node: 'host2' });
      expect(list.map((d) => d.container?.node)).toEqual(['host2']);
    } finally {
      api.close();
    }
  });

  it('rejects with the manager message and code', async () => {
    const api = new GrpcManagerApi(address, undefined, tlsDir);
    try {
      await expect(api.inspectNetwork('nope')).rejects.toMatchObject({
        code: ErrorCode.NotFound,
        message: 'network "nope" not found; list networks with "ctmgr network ls"',
      });
    } finally {
      api.close();
    }
  });

  it('reports an unimplemented method as a version mismatch', async () => {
    const api = new GrpcManagerApi(address, undefined, tlsDir);
    try {
      await expect(api.removeNetwork('blue')).rejects.toThrow(/does not implement RemoveNetwork; point --manager/);
    } finally {
      api.close();
    }
  });

  it('gives up at the deadline instead of hanging', async () => {
    const api = new GrpcManagerApi(address, 300, tlsDir);
    const started = Date.now();
    try {
      await expect(api.listNetworks()).rejects.toMatchObject({
        code: ErrorCode.DeadlineExceeded,
        message: expect.stringMatching(/did not answer ListNetworks within 300ms/),
      });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      api.close();
    }
  });

  it('says the manager is unreachable when nothing listens', async () => {
    const port = await freePort();
    const api = new GrpcManagerApi(`127.0.0.1:${port}`, 5000, tlsDir);
    try {
      await expect(api.listNodes()).rejects.toMatchObject({
        code: ErrorCode.Unavailable,
        message: `cannot reach the manager at 127.0.0.1:${port}: connection refused (is "ctmgr serve" running? set --manager or CTNET_MANAGER)`,
      });
    } finally {
      api.close();
    }
  });

  it('rejects a malformed address without opening a channel', async () => {
    const api = new GrpcManagerApi('not an address', undefined, tlsDir);
    await expect(api.listNodes()).rejects.toMatchObject({ code: ErrorCode.InvalidArgument, message: expect.stringMatching(/^--manager "not an address"/) });
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
