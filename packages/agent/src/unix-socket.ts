import { chmod, mkdir, stat, unlink } from 'node:fs/promises';
import { connect, type Server } from 'node:net';
import { dirname } from 'node:path';
import { CtnetError, ErrorCode } from '@ctnet/core';

/**
 * Serves `server` on a unix socket only root can reach: a directory it makes is 0700 and the
 * socket 0600 from the moment it exists (nobody else can ever connect). A socket file left
 * by an earlier agent is replaced; one another live process answers on is not (`taken` says
 * what to do instead). Resolves with a close that also removes the file.
 */
export async function listenPrivate(server: Server, path: string, opts: { what: string; taken: string; dirMode?: number }): Promise<() => Promise<void>> {
  const dir = dirname(path);
  const existed = await stat(dir).then(() => true, () => false);
  const mode = opts.dirMode ?? 0o700;
  await mkdir(dir, { recursive: true, mode });
  if (!existed) await chmod(dir, mode);
  if (await stat(path).then(() => true, () => false)) {
    const live = await new Promise<boolean>((resolve) => {
      const probe = connect(path);
      probe.once('connect', () => (probe.destroy(), resolve(true)));
      probe.once('error', () => resolve(false));
    });
    if (live) throw new CtnetError(ErrorCode.FailedPrecondition, `another process serves ${opts.what} ${path}; ${opts.taken}`);
    await unlink(path);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const old = process.umask(0o177);
    try {
      server.listen(path, resolve); // binds before returning
    } finally {
      process.umask(old);
    }
  });
  await chmod(path, 0o600);
  return () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      unlink(path).catch(() => undefined);
    });
}
