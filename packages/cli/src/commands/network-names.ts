import type { ManagerApi } from '../api.js';

/**
 * Tables and container views name networks rather than showing bare ids; one extra
 * listNetworks call finds the names, skipped when no endpoint needs one. An id with no
 * network (removed meanwhile) is shown through `fallback`.
 */
export async function networkNames(
  client: ManagerApi,
  needed: boolean,
  fallback: (id: string) => string,
): Promise<(id: string) => string> {
  const names = new Map<string, string>();
  if (needed) {
    for (const s of await client.listNetworks()) if (s.network) names.set(s.network.id, s.network.name);
  }
  return (id) => names.get(id) ?? fallback(id);
}
