import { invalidArgument } from '../errors.js';

/**
 * Caps on what a user may put into one record. Every record is read back in pages of
 * `PAGE_KEYS` (store) and streamed to every agent, so an uncapped field would let one request
 * make listings, the manager's start-up and the agents' snapshots fail for everyone. Docker
 * sets no such caps; these are far above anything a real container needs.
 */
export const LIMITS = {
  /** Ports one container publishes (`-p 8000-8999:…`, `-P`) or exposes. */
  ports: 1000,
  /** Entries of `-e`/`--env`, and their total size (names + values). */
  envEntries: 1000,
  envBytes: 64 * 1024,
  /** Arguments of the command, and their total size. */
  cmdArgs: 1000,
  cmdBytes: 64 * 1024,
  /** `--label`/`-o` pairs, each key and value. */
  labels: 64,
  labelBytes: 1024,
  /** Network aliases of one endpoint, `--dns`/`--dns-search` entries, `--link`s, `--constraint`s, `--publish`es, `--network`s. */
  listEntries: 64,
} as const;

/** UTF-8 length without Buffer (core is pure: no Node.js types). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) (n += 4), i++; // a surrogate pair
    else n += 3;
  }
  return n;
}
const bytes = utf8Length;

export function checkListSize(items: readonly unknown[] | undefined, what: string, max: number = LIMITS.listEntries): void {
  if ((items?.length ?? 0) > max) throw invalidArgument(`too many ${what}: ${items!.length} given, at most ${max} allowed`);
}

export function checkEnvSize(env: Readonly<Record<string, string>> | undefined): void {
  const entries = Object.entries(env ?? {});
  if (entries.length > LIMITS.envEntries) {
    throw invalidArgument(`too many environment variables: ${entries.length} given, at most ${LIMITS.envEntries}; pass large configuration as a file instead`);
  }
  const total = entries.reduce((n, [k, v]) => n + bytes(k) + bytes(v), 0);
  if (total > LIMITS.envBytes) {
    throw invalidArgument(`the environment is ${total} bytes, more than the ${LIMITS.envBytes} allowed; pass large values as a file instead`);
  }
}

export function checkCmdSize(cmd: readonly string[]): void {
  if (cmd.length > LIMITS.cmdArgs) throw invalidArgument(`the command has ${cmd.length} arguments, at most ${LIMITS.cmdArgs} allowed`);
  const total = cmd.reduce((n, a) => n + bytes(a), 0);
  if (total > LIMITS.cmdBytes) throw invalidArgument(`the command is ${total} bytes, more than the ${LIMITS.cmdBytes} allowed; put a long script in a file`);
}

export function checkLabelsSize(labels: Readonly<Record<string, string>> | undefined, what: string): void {
  const entries = Object.entries(labels ?? {});
  if (entries.length > LIMITS.labels) throw invalidArgument(`too many ${what}: ${entries.length} given, at most ${LIMITS.labels} allowed`);
  for (const [k, v] of entries) {
    if (bytes(k) > LIMITS.labelBytes || bytes(v) > LIMITS.labelBytes) {
      throw invalidArgument(`${what} "${k.slice(0, 40)}…" is too long: keys and values are at most ${LIMITS.labelBytes} bytes each`);
    }
  }
}

export function checkPortCount(count: number, what: string): void {
  if (count > LIMITS.ports) {
    throw invalidArgument(`${what} names ${count} ports, more than the ${LIMITS.ports} one container may have; publish a smaller range`);
  }
}
