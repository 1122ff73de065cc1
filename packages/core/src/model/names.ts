import { invalidArgument } from '../errors.js';

const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/**
 * Network, endpoint and node names must be DNS labels, because the embedded DNS serves them
 * as `<name>` and `<name>.<network>`. Uniqueness is case-insensitive, as DNS is: keys use
 * `nameKey(name)` while records keep the name as the user wrote it.
 */
export function parseName(text: string, what: string): string {
  const name = text.trim();
  if (name === '') throw invalidArgument(`${what} name is empty; give a name such as "app"`);
  if (!LABEL.test(name)) {
    throw invalidArgument(
      `${what} name "${name}" is not a valid DNS label; use 1-63 letters, digits or hyphens, not starting or ending with a hyphen (e.g. "${suggestLabel(name)}")`,
    );
  }
  return name;
}

export function nameKey(name: string): string {
  return name.toLowerCase();
}

function suggestLabel(name: string): string {
  const cleaned = name
    .replace(/[^A-Za-z0-9-]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 63) // cut before trimming the end, or the cut can leave a trailing hyphen
    .replace(/-+$/, '');
  return cleaned === '' ? 'app' : cleaned;
}

/** Parses `k=v` pairs (labels, aux addresses, options); a later key wins, as in Docker. */
export function parseKeyValues(pairs: readonly string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalidArgument(`${what} "${pair}" is not of the form key=value`);
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return out;
}
