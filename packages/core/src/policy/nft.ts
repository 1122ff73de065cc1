/**
 * nftables tables as data (pure): what ctnet wants in one table, rendered to an `nft -f`
 * script that replaces the whole table in one transaction, and compared with what
 * `nft -j list table` shows. Every rule carries a comment holding a hash of its own text, so
 * the comparison needs no parser of nft's expression JSON: a rule changed, added, removed or
 * reordered by hand shows up as a different list of hashes.
 */
export type NftHook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';

export interface NftChain {
  readonly name: string;
  /** A base chain (attached to a hook); absent for a regular chain reached by jump. */
  readonly base?: { readonly type: 'nat' | 'filter'; readonly hook: NftHook; readonly priority: number; readonly policy: 'accept' | 'drop' };
  readonly rules: readonly string[];
}

export interface NftTable {
  readonly family: 'ip';
  readonly name: string;
  readonly chains: readonly NftChain[];
}

/** What `nft -j list table` showed, reduced to what we compare. */
export interface ActualTable {
  readonly chains: ReadonlyMap<string, { readonly base?: NftChain['base']; readonly comments: readonly string[] }>;
}

/** FNV-1a, 32 bits: short, stable, and enough to tell one rule text from another. */
export function ruleHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `ct:${h.toString(16).padStart(8, '0')}`;
}

export function renderTable(t: NftTable): string {
  const lines = [`table ${t.family} ${t.name} {`];
  for (const c of t.chains) {
    lines.push(`  chain ${c.name} {`);
    if (c.base) lines.push(`    type ${c.base.type} hook ${c.base.hook} priority ${c.base.priority}; policy ${c.base.policy};`);
    for (const r of c.rules) lines.push(`    ${r} comment "${ruleHash(r)}"`);
    lines.push('  }');
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/**
 * One `nft -f` transaction: create the table if missing, delete it, add it anew. Either all
 * of it applies or none; conntrack keeps established flows (and their NAT) across it.
 * An empty table (no chains) is removed instead.
 */
export function replaceTableScript(t: NftTable): string {
  const head = `table ${t.family} ${t.name} {}\ndelete table ${t.family} ${t.name}\n`;
  return t.chains.length === 0 ? head : head + renderTable(t);
}

/** Parses `nft -j list table …` output; undefined when the table does not exist (empty output). */
export function parseNftTable(json: string): ActualTable | undefined {
  const text = json.trim();
  if (text === '') return undefined;
  const doc = JSON.parse(text) as { nftables?: Record<string, Record<string, unknown>>[] };
  const chains = new Map<string, { base?: NftChain['base']; comments: string[] }>();
  let table = false;
  for (const item of doc.nftables ?? []) {
    if (item.table) table = true;
    const c = item.chain;
    if (c) {
      const base =
        typeof c.hook === 'string'
          ? { type: c.type as 'nat' | 'filter', hook: c.hook as NftHook, priority: Number(c.prio), policy: (c.policy ?? 'accept') as 'accept' | 'drop' }
          : undefined;
      chains.set(String(c.name), { ...(base && { base }), comments: chains.get(String(c.name))?.comments ?? [] });
    }
    const r = item.rule;
    if (r) {
      const name = String(r.chain);
      const entry = chains.get(name) ?? { comments: [] };
      entry.comments.push(typeof r.comment === 'string' ? r.comment : '');
      chains.set(name, entry);
    }
  }
  return table ? { chains } : undefined;
}

/** True when the kernel's table is exactly the desired one (same chains, hooks and rules in order). */
export function tableInSync(want: NftTable, have: ActualTable | undefined): boolean {
  if (!have) return want.chains.length === 0;
  if (have.chains.size !== want.chains.length) return false;
  for (const c of want.chains) {
    const h = have.chains.get(c.name);
    if (!h) return false;
    if (JSON.stringify(h.base ?? null) !== JSON.stringify(c.base ?? null)) return false;
    if (h.comments.length !== c.rules.length || c.rules.some((r, i) => ruleHash(r) !== h.comments[i])) return false;
  }
  return true;
}
