import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ServiceError } from '@grpc/grpc-js';
import * as proto from '@ctnet/proto';
import { Metadata } from '@grpc/grpc-js';
import { AgentServiceClient, ManagerServiceClient, type AgentMessage, type ManagerMessage, type NodeCertificate } from '@ctnet/proto';
import { createCsr, parseJoinToken, type Credential } from '@ctnet/pki';
import { freePort } from '@ctnet/store';

export const REPO = resolve(import.meta.dirname, '..', '..');
export const CTMGR = join(REPO, 'packages', 'cli', 'dist', 'bin', 'ctmgr');

export interface ManagerProcess {
  readonly addr: string;
  readonly httpAddr: string;
  readonly pid: number;
  readonly dataDir: string;
  /** The admin credential the manager wrote (ca.pem, cert.pem, key.pem): the CLI's --tls-dir. */
  readonly adminDir: string;
  readonly output: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Runs `ctmgr serve` as a real process and waits for its /healthz (unless told not to). */
export async function startManagerProcess(opts: {
  etcd?: string;
  args?: string[];
  waitHealthy?: boolean;
  env?: Record<string, string>;
}): Promise<ManagerProcess> {
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  // Every manager gets a data dir of its own (the default, /var/lib/ctnet, is the machine's).
  const given = (opts.args ?? []).find((a) => a.startsWith('--data-dir='))?.slice('--data-dir='.length);
  const own = given ? undefined : await mkdtemp(join(tmpdir(), 'ctnet-mgr-'));
  const dataDir = given ?? own!;
  const args = [CTMGR, 'serve', `--listen=127.0.0.1:${grpcPort}`, `--http=127.0.0.1:${httpPort}`, ...(own ? [`--data-dir=${own}`] : []), ...(opts.args ?? [])];
  if (opts.etcd) args.push(`--etcd-endpoints=${opts.etcd}`);
  const child: ChildProcess = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const proc: ManagerProcess = {
    addr: `127.0.0.1:${grpcPort}`,
    httpAddr: `127.0.0.1:${httpPort}`,
    pid: child.pid ?? -1,
    dataDir,
    adminDir: join(dataDir, 'admin'),
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
        await exited;
        clearTimeout(timer);
      }
      if (own) await rm(own, { recursive: true, force: true });
    },
  };
  if (opts.waitHealthy !== false) {
    try {
      await waitUntil(async () => (await httpGet(`http://${proc.httpAddr}/healthz`)).status === 200, 20_000, () => `ctmgr not healthy:\n${out}`);
    } catch (err) {
      await proc.stop('SIGKILL');
      throw err;
    }
  }
  return proc;
}

export async function httpGet(url: string): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(url);
    return { status: res.status, body: await res.text() };
  } catch {
    return { status: 0, body: '' };
  }
}

export async function waitUntil(cond: () => boolean | Promise<boolean>, ms: number, what: () => string = () => 'condition'): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for: ${what()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

type Unary<Req, Res> = (req: Req, cb: (err: ServiceError | null, res: Res) => void) => unknown;
export type Api = {
  [K in keyof ManagerServiceClient as ManagerServiceClient[K] extends Unary<never, never> ? K : never]: ManagerServiceClient[K] extends Unary<
    infer Req,
    infer Res
  >
    ? (req: Partial<Req>) => Promise<Res>
    : never;
};

/** The admin credential a manager wrote. */
export function adminCredential(mgr: { adminDir: string }): Credential {
  const read = (f: string) => readFileSync(join(mgr.adminDir, f), 'utf8');
  return { caPem: read('ca.pem'), certPem: read('cert.pem'), keyPem: read('key.pem') };
}

/** A promise-shaped ManagerService client (the raw API, below the CLI), as admin unless `cred` says otherwise. */
export function apiClient(mgr: { addr: string; adminDir: string }, cred: proto.TlsCredential = adminCredential(mgr)): Api & { close(): void } {
  const client = new ManagerServiceClient(mgr.addr, proto.clientCredentials(cred), proto.clientOptions());
  const api: Record<string, unknown> = { close: () => client.close() };
  for (const name of Object.keys(ManagerServiceClient.service)) {
    // Every request message is named <Method>Request; fromPartial fills the defaults.
    const type = (proto as unknown as Record<string, { fromPartial(o: object): object }>)[`${name[0]!.toUpperCase()}${name.slice(1)}Request`]!;
    api[name] = (partial: object) =>
      new Promise((resolve, reject) =>
        (client as unknown as Record<string, Function>)[name]!.call(
          client,
          type.fromPartial(partial),
          { deadline: Date.now() + 20_000 } as never,
          (err: ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)),
        ),
      );
  }
  return api as Api & { close(): void };
}

/**
 * A node certificate for `name`, got as an agent gets it: the worker token from the admin
 * API, then Join with a CSR. Kept per cluster CA and name, so reconnecting reuses it (a
 * second join of a ready node is refused, as it should be).
 */
const nodeCreds = new Map<string, Promise<Credential>>();
export function nodeCredential(mgr: { addr: string; adminDir: string }, name: string): Promise<Credential> {
  const admin = adminCredential(mgr);
  const key = `${admin.caPem}\0${name}`;
  let cred = nodeCreds.get(key);
  if (!cred) {
    cred = (async () => {
      const api = new ManagerServiceClient(mgr.addr, proto.clientCredentials(admin), proto.clientOptions());
      const token = await new Promise<string>((resolve, reject) =>
        api.joinToken({ role: 'worker', rotate: false }, (err, r) => (api.close(), err ? reject(err) : resolve(r.token))),
      );
      const { secret } = parseJoinToken(token);
      const { keyPem, csrPem } = await createCsr(name);
      const client = new AgentServiceClient(mgr.addr, proto.clientCredentials({ caPem: admin.caPem }), proto.clientOptions());
      try {
        const res = await new Promise<NodeCertificate>((resolve, reject) =>
          client.join({ secret, csrPem }, new Metadata(), { deadline: Date.now() + 20_000 }, (err, r) => (err ? reject(err) : resolve(r))),
        );
        return { caPem: res.caPem, certPem: res.certPem, keyPem };
      } finally {
        client.close();
      }
    })();
    cred.catch(() => nodeCreds.delete(key));
    nodeCreds.set(key, cred);
  }
  return cred;
}

/** Forgets a cached node certificate (after node rm revoked it). */
export function forgetNodeCredential(mgr: { adminDir: string }, name: string): void {
  nodeCreds.delete(`${adminCredential(mgr).caPem}\0${name}`);
}

/** A bare agent stream: registers a node and records what the manager sends. */
export interface AgentConn {
  readonly messages: ManagerMessage[];
  readonly errors: ServiceError[];
  ack(revision: number): void;
  close(): void;
}

/**
 * Opens an agent stream for `node` with a node certificate for `opts.as` (default: the
 * node's own name). Returns at once; the join and the stream follow (wait on messages).
 */
export function connectAgent(
  mgr: { addr: string; adminDir: string },
  node: { name: string; addr: string; routes?: string[]; labels?: Record<string, string> },
  resumeRevision = 0,
  autoAck = false,
  opts: { as?: string } = {},
): AgentConn {
  const messages: ManagerMessage[] = [];
  const errors: ServiceError[] = [];
  const pending: AgentMessage[] = [];
  let send = (m: AgentMessage): void => void pending.push(m);
  let closed = false;
  let close = (): void => {
    closed = true;
  };
  void nodeCredential(mgr, opts.as ?? node.name).then(
    (cred) => {
      if (closed) return;
      const client = new AgentServiceClient(mgr.addr, proto.clientCredentials(cred), proto.clientOptions());
      const call = client.connect();
      send = (m) => void call.write(m);
      close = () => {
        call.cancel();
        client.close();
      };
      call.on('data', (m: ManagerMessage) => {
        messages.push(m);
        if (autoAck) {
          const rev = m.msg?.$case === 'snapshot' ? m.msg.value.revision : m.msg?.$case === 'changes' ? m.msg.value.revision : 0;
          if (rev) send({ msg: { $case: 'ack', value: { revision: rev } } });
        }
      });
      call.on('error', (e: ServiceError) => errors.push(e));
      send({
        msg: {
          $case: 'hello',
          value: {
            node: { name: node.name, addr: node.addr, hostname: node.name, labels: node.labels ?? {}, routes: node.routes ?? [], registeredAt: '', problems: {}, dockerNetworks: {} },
            resumeRevision,
          },
        },
      });
      for (const m of pending.splice(0)) send(m);
    },
    (err: ServiceError) => errors.push(err),
  );
  return {
    messages,
    errors,
    ack: (revision) => send({ msg: { $case: 'ack', value: { revision } } }),
    close: () => close(),
  };
}

/** The highest revision in the messages received so far. */
export function lastRevision(conn: AgentConn): number {
  let rev = 0;
  for (const m of conn.messages) {
    if (m.msg?.$case === 'snapshot') rev = Math.max(rev, m.msg.value.revision);
    if (m.msg?.$case === 'changes') rev = Math.max(rev, m.msg.value.revision);
  }
  return rev;
}

/** A command's stdout; fails with its exit code and stderr when it did not succeed. */
export async function ok(p: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr || r.stdout}`);
  return r.stdout;
}
