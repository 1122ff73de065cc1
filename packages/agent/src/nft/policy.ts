import { parseNftTable, replaceTableScript, SANDBOX_TABLE, tableInSync, type ActualTable, type NftTable } from '@ctnet/core';
import type { CommandRunner } from '../netlink/runner.js';

/**
 * Keeps ctnet's nftables tables as desired: the host's (in the agent's own namespace) and one
 * per sandbox. Like the FDB step: a change-triggered run compares with what it last applied
 * (nothing to read); a resync reads the kernel back (`nft -j list table`) and repairs any
 * table that differs, counting it as drift. Each table is replaced whole in one `nft -f`
 * transaction, so a reader never sees half a rule set; sandboxes are done in one shell for
 * all of them (one child process from here, not one per sandbox).
 */
export interface PolicyApplier {
  /** Returns whether it (re)wrote the table, and whether that repaired drift. */
  syncHost(table: NftTable, thorough: boolean): Promise<{ applied: boolean; drift: boolean }>;
  syncSandboxes(tables: readonly SandboxTable[], thorough: boolean): Promise<{ applied: number; drift: number; errors: string[] }>;
  /** The sandbox runtime applied this table itself (before starting the container). */
  believe(netns: string, table: NftTable): void;
  /** Reads tables back without changing anything (diag): the host's, and each sandbox's. */
  read(hostTable: string, netns: readonly string[]): Promise<{ host: ActualTable | undefined; sandboxes: Map<string, ActualTable | undefined> }>;
}

export interface SandboxTable {
  readonly netns: string;
  readonly table: NftTable;
}

const MARK = '@@ctnet';
const EOF_MARK = '__CTNET_NFT_EOF__';

export function createPolicyApplier(runner: CommandRunner): PolicyApplier {
  let host: string | undefined; // the script last applied or found in sync
  const sandboxes = new Map<string, string>();

  const readSandboxes = async (names: readonly string[]): Promise<Map<string, string>> => {
    const res = await runner.run('sh', ['-c', `for ns do echo "${MARK} $ns"; ip netns exec "$ns" nft -j list table ip ${SANDBOX_TABLE} 2>/dev/null; echo; done`, 'sh', ...names]);
    const out = new Map<string, string>();
    let current: string | undefined;
    let buf: string[] = [];
    for (const line of `${res.stdout}\n${MARK} `.split('\n')) {
      if (line.startsWith(`${MARK} `)) {
        if (current !== undefined) out.set(current, buf.join('\n'));
        current = line.slice(MARK.length + 1);
        buf = [];
      } else buf.push(line);
    }
    return out;
  };

  return {
    async syncHost(table, thorough) {
      const script = replaceTableScript(table);
      if (!thorough && host === script) return { applied: false, drift: false };
      let drift = false;
      if (thorough || host === undefined) {
        const res = await runner.run('nft', ['-j', 'list', 'table', 'ip', table.name]);
        if (tableInSync(table, res.exitCode === 0 ? parseNftTable(res.stdout) : undefined)) {
          host = script;
          return { applied: false, drift: false };
        }
        drift = host === script; // we left it like this; someone changed it since
      }
      host = undefined;
      const res = await runner.run('nft', ['-f', '-'], { input: script });
      if (res.exitCode !== 0) throw new Error(`nft table ip ${table.name}: ${res.stderr.trim() || `exit ${res.exitCode}`}`);
      host = script;
      return { applied: true, drift };
    },

    async syncSandboxes(tables, thorough) {
      const scripts = tables.map((t) => ({ ...t, script: replaceTableScript(t.table) }));
      const wanted = new Set(tables.map((t) => t.netns));
      for (const ns of [...sandboxes.keys()]) if (!wanted.has(ns)) sandboxes.delete(ns); // gone sandboxes
      let todo = scripts.filter((t) => thorough || sandboxes.get(t.netns) !== t.script);
      let drift = 0;
      if (thorough && todo.length > 0) {
        const actual = await readSandboxes(todo.map((t) => t.netns));
        todo = todo.filter((t) => {
          const text = actual.get(t.netns) ?? '';
          let ok = false;
          try {
            ok = tableInSync(t.table, parseNftTable(text));
          } catch {
            ok = false; // unreadable: rewrite it
          }
          if (ok) sandboxes.set(t.netns, t.script);
          else if (sandboxes.get(t.netns) === t.script) drift++;
          return !ok;
        });
      }
      if (todo.length === 0) return { applied: 0, drift, errors: [] };
      const body = todo
        .map((t) => `ip netns exec '${t.netns}' nft -f - <<'${EOF_MARK}'\n${t.script}${EOF_MARK}\necho "${MARK} ${t.netns} $?"\n`)
        .join('');
      const res = await runner.run('sh', ['-s'], { input: body });
      const rc = new Map<string, string>();
      for (const line of res.stdout.split('\n')) {
        const m = line.startsWith(`${MARK} `) ? line.slice(MARK.length + 1).split(' ') : undefined;
        if (m && m.length === 2) rc.set(m[0]!, m[1]!);
      }
      const errors: string[] = [];
      for (const t of todo) {
        if (rc.get(t.netns) === '0') sandboxes.set(t.netns, t.script);
        else {
          sandboxes.delete(t.netns);
          errors.push(`nft in sandbox ${t.netns}: ${rc.has(t.netns) ? `exit ${rc.get(t.netns)}` : 'not run'}${res.stderr.trim() ? ` (${res.stderr.trim().split('\n')[0]})` : ''}`);
        }
      }
      return { applied: todo.length, drift, errors };
    },

    believe(netns, table) {
      sandboxes.set(netns, replaceTableScript(table));
    },

    async read(hostTable, netns) {
      const parse = (text: string): ActualTable | undefined => {
        try {
          return parseNftTable(text);
        } catch {
          return undefined;
        }
      };
      const res = await runner.run('nft', ['-j', 'list', 'table', 'ip', hostTable]);
      const texts = netns.length > 0 ? await readSandboxes(netns) : new Map<string, string>();
      return { host: res.exitCode === 0 ? parse(res.stdout) : undefined, sandboxes: new Map(netns.map((ns) => [ns, parse(texts.get(ns) ?? '')])) };
    },
  };
}
