import { readFile, rename, writeFile } from 'node:fs/promises';
import { CtnetError, ErrorCode, invalidArgument } from '@ctnet/core';

/**
 * The one line of Docker daemon configuration ctnet needs: `"dns": ["<the agent's Docker
 * resolver address>"]` in daemon.json. Docker's own resolver (127.0.0.11 in every container
 * on a user network) answers the names of its host's containers and forwards every other
 * name to the daemon's "dns" servers, from inside the container; the agent answers there with
 * the cluster's names, scoped to the asking container's networks, and forwards the rest to the
 * host's resolvers. Merged into an existing file, every other setting kept; an existing "dns"
 * naming other servers is refused unless forced (they would no longer be asked directly).
 */
export function mergeDaemonDns(existing: string, dnsAddr: string, force: boolean): { text: string; changed: boolean } {
  let config: Record<string, unknown> = {};
  if (existing.trim() !== '') {
    try {
      const parsed = JSON.parse(existing) as unknown;
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
      config = parsed as Record<string, unknown>;
    } catch (err) {
      throw invalidArgument(`the Docker daemon configuration is not a JSON object (${err instanceof Error ? err.message : String(err)}); fix it, then run this again`);
    }
  }
  const dns = config.dns;
  if (Array.isArray(dns) && dns.length === 1 && dns[0] === dnsAddr) return { text: existing, changed: false };
  if (dns !== undefined && !force) {
    throw new CtnetError(
      ErrorCode.FailedPrecondition,
      `the Docker daemon already names DNS servers (${JSON.stringify(dns)}); ctnet's resolver forwards what is not the cluster's to the host's resolvers, so they can go: pass --force to replace them`,
    );
  }
  return { text: `${JSON.stringify({ ...config, dns: [dnsAddr] }, null, 2)}\n`, changed: true };
}

/** Writes the merged file in place (atomically); says whether dockerd must be restarted. */
export async function writeDaemonDns(path: string, dnsAddr: string, force: boolean): Promise<boolean> {
  const existing = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const { text, changed } = mergeDaemonDns(existing, dnsAddr, force);
  if (!changed) return false;
  await writeFile(`${path}.ctnet-tmp`, text, { mode: 0o644 });
  await rename(`${path}.ctnet-tmp`, path);
  return true;
}
