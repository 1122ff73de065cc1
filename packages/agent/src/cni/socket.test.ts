import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseShimRequest, serveCniSocket } from './socket.js';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as never;
const SHIM = resolve(import.meta.dirname, '../../../cni/dist/ctnet');
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'ctnet-cnisock-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Sends raw bytes as the shim would and reads the whole answer. */
const exchange = (path: string, bytes: Buffer): Promise<string> =>
  new Promise((resolvePromise, reject) => {
    const s = connect(path);
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => resolvePromise(out));
    s.on('error', reject);
    s.end(bytes);
  });

describe('parseShimRequest', () => {
  it('reads the CNI_* environment and stdin, and waits for the end of the request', () => {
    const req = Buffer.concat([Buffer.from('CTNET-CNI 1\nCNI_COMMAND=ADD\0CNI_ARGS=A=1;B=2\0PATH=/bin\0\0'), Buffer.from('{"x":1}')]);
    expect(parseShimRequest(req, false)).toBeUndefined();
    expect(parseShimRequest(req, true)).toEqual({ env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'A=1;B=2' }, stdin: '{"x":1}' });
  });

  it('refuses what is not the shim\'s', () => {
    expect(() => parseShimRequest(Buffer.from('GET / HTTP/1.1\r\n\r\n'), false)).toThrow(/bad header/);
    expect(() => parseShimRequest(Buffer.from('CTNET-CNI 1\nCNI_COMMAND=ADD'), true)).toThrow(/inside the environment/);
  });
});

describe('serveCniSocket', () => {
  it('is root-only (0600 in a 0700 directory it makes), answers the shim, and removes its file on close', async () => {
    const path = join(tmp(), 'run', 'cni.sock');
    const server = await serveCniSocket(path, async (env, stdin) => ({ ok: env.CNI_COMMAND === 'STATUS', output: `got ${stdin}` }), silent);
    try {
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
      expect(await exchange(path, Buffer.from('CTNET-CNI 1\nCNI_COMMAND=STATUS\0\0{}'))).toBe('0got {}\n');
      expect(await exchange(path, Buffer.from('nonsense'))).toBe('1');
    } finally {
      await server.close();
    }
    expect(existsSync(path)).toBe(false);
  });

  it('replaces a socket file left by a dead agent, and refuses one a live agent serves', async () => {
    const path = join(tmp(), 'cni.sock');
    // A process that listens there and is killed -9: its socket file stays behind.
    const holder = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((r) => holder.stdout!.once('data', r));
    await expect(serveCniSocket(path, async () => ({ ok: true, output: '' }), silent)).rejects.toThrow(/another process serves the CNI socket/);
    holder.kill('SIGKILL');
    await new Promise((r) => holder.once('exit', r));
    expect(existsSync(path)).toBe(true);
    const second = await serveCniSocket(path, async () => ({ ok: true, output: 'second' }), silent);
    try {
      expect(await exchange(path, Buffer.from('CTNET-CNI 1\nCNI_COMMAND=STATUS\0\0{}'))).toBe('0second\n');
    } finally {
      await second.close();
    }
  });

  it.skipIf(!existsSync(SHIM))('the real shim: VERSION alone, other verbs through the socket with the agent\'s answer and exit status', async () => {
    const path = join(tmp(), 'cni.sock');
    const server = await serveCniSocket(path, async (env) => ({ ok: env.CNI_COMMAND === 'DEL', output: env.CNI_COMMAND === 'DEL' ? '' : '{"code":7,"msg":"no"}' }), silent);
    const shim = (command: string, stdin: string) =>
      new Promise<{ code: number; out: string }>((res) => {
        const p = execFile(SHIM, [], { env: { CNI_COMMAND: command, CNI_CONTAINERID: 'c1' } }, (err, stdout) => res({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout }));
        p.stdin!.end(stdin);
      });
    try {
      const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'n', agentSocket: path });
      expect(await shim('VERSION', '')).toEqual({ code: 0, out: '{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n' });
      expect(await shim('DEL', conf)).toEqual({ code: 0, out: '' });
      expect(await shim('ADD', conf)).toEqual({ code: 1, out: '{"code":7,"msg":"no"}\n' });
    } finally {
      await server.close();
    }
  });
});
