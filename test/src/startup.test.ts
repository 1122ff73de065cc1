import { spawn } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { freePort } from '@ctnet/store';
import { CTMGR, tempDir } from './harness.js';

let dir: Awaited<ReturnType<typeof tempDir>> | undefined;
afterAll(async () => dir?.remove());

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

it('exits with a clear error, leaving nothing running, when its HTTP port is taken', async () => {
  dir = await tempDir('ctnet-startup-');
  const taken = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => taken.once('listening', r));
  const httpPort = (taken.address() as { port: number }).port;
  const [grpcPort, etcdPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [CTMGR, 'serve', `--listen=127.0.0.1:${grpcPort}`, `--http=127.0.0.1:${httpPort}`, `--data-dir=${dir.path}`, `--embedded-etcd-port=${etcdPort}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => (child.kill('SIGKILL'), resolve(null)), 30_000);
    child.once('exit', (c) => (clearTimeout(timer), resolve(c)));
  });
  taken.close();
  expect(code).toBe(1);
  expect(err).toMatch(/cannot serve --http on 127\.0\.0\.1:\d+ .*pick another --http/);
  expect(await portOpen(etcdPort)).toBe(false); // the embedded etcd was stopped too
});
