import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { invalidArgument, type Logger } from '@ctnet/core';
import { serveDockerPlugin } from './socket.js';

const silent: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

const post = (socketPath: string, path: string, body: string | Buffer, method = 'POST'): Promise<{ status: number; json: Record<string, unknown> }> =>
  new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method, headers: { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });

describe('the Docker plugin socket', () => {
  let dir: string;
  let close: () => Promise<void>;
  let sock: string;
  const calls: string[] = [];
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ctnet-plugsock-'));
    const served = await serveDockerPlugin(
      join(dir, 'plugins'),
      async (method, body) => {
        calls.push(method);
        if (method === 'IpamDriver.RequestPool') throw invalidArgument('subnet overlaps');
        return { echo: body };
      },
      silent,
    );
    close = served.close;
    sock = served.path;
  });
  afterEach(async () => {
    await close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is root\'s alone, and answers each call with JSON', async () => {
    expect(statSync(sock).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'plugins')).mode & 0o777).toBe(0o700);
    expect(await post(sock, '/NetworkDriver.Leave', '{"NetworkID":"a"}')).toEqual({ status: 200, json: { echo: { NetworkID: 'a' } } });
    expect(await post(sock, '/Plugin.Activate', '')).toEqual({ status: 200, json: { echo: {} } });
  });

  it('answers refusals in the field dockerd reads: Err for the network driver, Error for IPAM', async () => {
    expect(await post(sock, '/IpamDriver.RequestPool', '{}')).toEqual({ status: 200, json: { Error: 'ctnet: subnet overlaps' } });
    const bad = await post(sock, '/NetworkDriver.Join', '{"NetworkID": tru');
    expect(bad.status).toBe(200);
    expect(bad.json.Err).toMatch(/not JSON/);
  });

  it('runs nothing for an unknown call, a GET, or a body over 1 MiB', async () => {
    calls.length = 0;
    expect((await post(sock, '/NetworkDriver.Explode', '{}')).status).toBe(404);
    expect((await post(sock, '/NetworkDriver.Leave', '', 'GET')).status).toBe(404);
    // Announced as 8 MiB, sent until the answer comes: the refusal comes after 1 MiB.
    const big = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = request({ socketPath: sock, path: '/NetworkDriver.CreateNetwork', method: 'POST', headers: { 'Content-Length': 8 << 20 } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => (resolve(JSON.parse(text) as Record<string, unknown>), req.destroy()));
      });
      req.on('error', () => undefined); // cut off after the answer: expected
      const chunk = Buffer.alloc(64 << 10, 0x20);
      let sent = 0;
      const pump = (): void => {
        while (sent < (2 << 20)) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
      };
      pump();
      setTimeout(() => reject(new Error('no answer')), 10_000).unref();
    });
    expect(big.Err).toMatch(/over 1048576 bytes refused/);
    expect(calls).toEqual([]);
  });

  it('replaces a socket file no one answers on, and refuses one a live agent serves', async () => {
    await expect(serveDockerPlugin(join(dir, 'plugins'), async () => ({}), silent)).rejects.toThrow(/another process serves the Docker plugin socket/);
  });
});
