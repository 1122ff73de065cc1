import { chmod, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CtnetError, ErrorCode } from '@ctnet/core';

/**
 * A credential on disk, as ctmgr writes the admin one and ctagent its node one: a directory
 * (mode 0700) with ca.pem, cert.pem and key.pem (each 0600). Written file by file through a
 * temporary name and a rename, so a crash never leaves a half-written key.
 */
export interface Credential {
  /** The trusted root(s), PEM; more than one while the CA rotates. */
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export const CREDENTIAL_FILES = { ca: 'ca.pem', cert: 'cert.pem', key: 'key.pem' } as const;

export async function writeCredential(dir: string, cred: Credential): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700); // an existing directory keeps its mode otherwise
  const put = async (file: string, text: string) => {
    const tmp = join(dir, `.${file}.tmp`);
    // A leftover (or planted) temporary file or symlink is never written through: remove it,
    // then create exclusively, 0600 from the first byte.
    await unlink(tmp).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
    await rename(tmp, join(dir, file));
  };
  // The key before the certificate: a certificate on disk always has its key beside it.
  await put(CREDENTIAL_FILES.key, cred.keyPem);
  await put(CREDENTIAL_FILES.cert, cred.certPem);
  await put(CREDENTIAL_FILES.ca, cred.caPem);
}

/** Reads a credential directory; a clear error names what is missing and how to get it. */
export async function readCredential(dir: string, fix: string): Promise<Credential> {
  const read = async (file: string): Promise<string> => {
    try {
      return await readFile(join(dir, file), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'is missing' : code === 'EACCES' ? 'is not readable by this user' : `cannot be read (${code})`;
      throw new CtnetError(ErrorCode.Unauthenticated, `${join(dir, file)} ${why}; ${fix}`, { cause: err });
    }
  };
  return { caPem: await read(CREDENTIAL_FILES.ca), certPem: await read(CREDENTIAL_FILES.cert), keyPem: await read(CREDENTIAL_FILES.key) };
}

export async function credentialExists(dir: string): Promise<boolean> {
  try {
    await stat(join(dir, CREDENTIAL_FILES.cert));
    return true;
  } catch {
    return false;
  }
}
