import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * The Prometheus kit (deploy/prometheus, deploy/grafana/ctnet.json) as data: every dashboard
 * query and every alert expression, with Grafana's variables replaced by real values, ready
 * for Prometheus' /api/v1/query. A lab test scraping real managers and agents (jobs named
 * ctnet-manager and ctnet-agent, as in deploy/prometheus/prometheus.yml) asserts that each
 * query's `data` returns at least one series; prometheus-kit.test.ts checks the kit without one.
 *
 *   for (const q of kitQueries().filter((q) => q.needs.every((n) => done.has(n)))) {
 *     expect((await query(q.data)).length, q.id).toBeGreaterThan(0);
 *   }
 *
 * A returned series may hold NaN (a quantile over a window with no observations, a ratio of
 * two zero rates): it is data. rate() and increase() need two samples in their window, and
 * variables make the dashboard's windows 1m: scrape every 15s or so, and query after two
 * scrapes have followed the DNS queries. As in prometheus.yml, give the manager targets no
 * `node` label (the managers' per-node gauges carry their own).
 */

const REPO = resolve(import.meta.dirname, '..', '..', '..');

export const KIT = {
  config: join(REPO, 'deploy', 'prometheus', 'prometheus.yml'),
  rules: join(REPO, 'deploy', 'prometheus', 'ctnet-rules.yml'),
  rulesTest: join(REPO, 'deploy', 'prometheus', 'ctnet-rules.test.yml'),
  dashboard: join(REPO, 'deploy', 'grafana', 'ctnet.json'),
} as const;

/**
 * What a cluster must have done before a query returns series, beyond the baseline every query
 * may count on: an overlay network, a few containers on it, and DNS queries from those
 * containers for cluster names and for an outside name (forwarded, or SERVFAIL without an
 * upstream; CtnetDnsServfail has series only for agents that relayed one). `service`: created
 * or scaled a service since the managers started (a lab's VIP service does); `docker-plugin`:
 * Docker has called the plugin.
 */
export type Need = 'service' | 'docker-plugin';

/** Metrics the baseline has no series of yet. */
const CONDITIONAL: Readonly<Record<string, Need>> = {
  ctnet_manager_service_converge_seconds: 'service',
  ctnet_manager_task_events_total: 'service',
  ctnet_agent_docker_call_seconds: 'docker-plugin',
};

export interface KitQuery {
  readonly source: 'dashboard' | 'alert';
  /** "<panel title> [<refId>]" or the alert's name. */
  readonly id: string;
  /** The dashboard target or the whole alert expression, variables substituted. */
  readonly expr: string;
  /** What must return at least one series on a live cluster: the alert without its threshold; for the dashboard, expr. */
  readonly data: string;
  readonly metrics: readonly string[];
  readonly needs: readonly Need[];
}

export interface AlertRule {
  readonly group: string;
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Names of its annotations (their templated text is promtool's to check). */
  readonly annotations: readonly string[];
}

export interface DashboardTarget {
  readonly refId?: string;
  readonly expr?: string;
  readonly datasource?: { type?: string; uid?: string };
}

export interface DashboardPanel {
  readonly id?: number;
  readonly type?: string;
  readonly title?: string;
  readonly datasource?: { type?: string; uid?: string };
  readonly targets?: readonly DashboardTarget[];
  readonly panels?: readonly DashboardPanel[];
}

export interface Dashboard {
  readonly schemaVersion?: number;
  readonly panels?: readonly DashboardPanel[];
  readonly templating?: { list?: readonly { name: string; type: string; query?: unknown }[] };
}

/**
 * The labels prometheus.yml's scrape targets add, by job: `job` and `instance`, and those of its
 * static_configs (block or flow `labels:` maps; comments skipped). Not a YAML parser: enough for
 * prometheus.yml, which promtool checks.
 */
export function scrapeTargetLabels(path: string = KIT.config): Map<string, Set<string>> {
  return targetLabelsOf(readFileSync(path, 'utf8'));
}

export function targetLabelsOf(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  let labels: Set<string> | undefined;
  let mapIndent: number | undefined; // indent of a block `labels:` whose keys follow
  for (const line of text.split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue;
    const indent = line.length - line.trimStart().length;
    const job = /^\s*-\s*job_name:\s*['"]?([^'"\s]+)/.exec(line);
    if (job) {
      out.set(job[1]!, (labels = new Set(['job', 'instance'])));
      mapIndent = undefined;
      continue;
    }
    if (mapIndent !== undefined) {
      const key = /^\s*([a-zA-Z_]\w*)\s*:/.exec(line);
      if (indent > mapIndent && key) {
        labels?.add(key[1]!);
        continue;
      }
      mapIndent = undefined;
    }
    const map = /^\s*(?:-\s*)?labels:\s*(\{.*\})?\s*$/.exec(line);
    if (map && labels) {
      if (map[1]) for (const k of map[1].matchAll(/([a-zA-Z_]\w*)\s*:/g)) labels.add(k[1]!);
      else mapIndent = indent;
    }
  }
  return out;
}

/** Every dashboard query, variables substituted. */
export function dashboardQueries(path: string = KIT.dashboard): KitQuery[] {
  const dashboard = JSON.parse(readFileSync(path, 'utf8')) as Dashboard;
  return dashboardPanels(dashboard).flatMap((p) =>
    (p.targets ?? []).map((t) => {
      const expr = substituteVariables(t.expr ?? '');
      return query('dashboard', `${p.title ?? `panel ${p.id}`} [${t.refId ?? '?'}]`, expr, expr);
    }),
  );
}

/** Every alert expression, and its data form (the expression without the threshold). */
export function alertQueries(path: string = KIT.rules): KitQuery[] {
  return readAlertRules(readFileSync(path, 'utf8')).map((r) => query('alert', r.alert, r.expr, dataForm(r.expr)));
}

export function kitQueries(): KitQuery[] {
  return [...dashboardQueries(), ...alertQueries()];
}

function query(source: KitQuery['source'], id: string, expr: string, data: string): KitQuery {
  const metrics = metricNames(expr);
  const needs = new Set<Need>();
  for (const m of metrics) {
    const need = CONDITIONAL[baseName(m)];
    if (need) needs.add(need);
  }
  return { source, id, expr, data, metrics, needs: [...needs] };
}

/** A histogram's or summary's series name without _bucket/_sum/_count. */
function baseName(metric: string): string {
  return metric.replace(/_(bucket|sum|count)$/, '');
}

/** The panels with queries: rows' nested panels (collapsed rows) included, rows themselves not. */
export function dashboardPanels(dashboard: Dashboard): DashboardPanel[] {
  const out: DashboardPanel[] = [];
  for (const p of dashboard.panels ?? []) {
    if (p.type === 'row') out.push(...(p.panels ?? []));
    else out.push(p);
  }
  return out;
}

/**
 * Grafana's variables as a query over everything would have them: intervals 1m, every
 * template variable `.*` (each is used as `label=~"$var"`), unless given in `values`.
 */
export function substituteVariables(expr: string, values: Readonly<Record<string, string>> = {}): string {
  const value = (name: string): string => values[name] ?? (name === '__range' ? '1h' : name.startsWith('__') ? '1m' : '.*');
  return expr
    .replace(/\$\{(\w+)(?::\w+)?\}/g, (_, name: string) => value(name))
    .replace(/\[\[(\w+)\]\]/g, (_, name: string) => value(name))
    .replace(/\$(\w+)/g, (_, name: string) => value(name));
}

const TRAILING_THRESHOLD = /\s*(?:==|!=|>=|<=|>|<)\s*(?:bool\s+)?[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*$/;

/**
 * An alert's expression without its threshold: "<data> <comparison> <number>" gives <data>.
 * Throws when the expression is not of that shape (the comparison must be the outermost
 * operation, so that <data> alone is a query that returns the series being judged).
 */
export function dataForm(expr: string): string {
  const m = TRAILING_THRESHOLD.exec(expr);
  const shape = 'write it as "<data> <comparison> <number>", with set operators (and, or, unless) and other comparisons inside parentheses';
  if (!m) throw new Error(`no threshold at the end of ${JSON.stringify(expr)}: ${shape}`);
  const data = expr.slice(0, m.index).trim();
  let depth = 0;
  let outer = '';
  for (const ch of mask(data)) {
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (depth === 0) outer += ch;
  }
  if (depth !== 0 || /\b(?:and|or|unless)\b|[<>]|==|!=/.test(outer)) throw new Error(`${JSON.stringify(expr)} has more than one comparison at its outermost level: ${shape}`);
  return data;
}

/** The expression with string literals emptied and the insides of {} and [] removed. */
function mask(expr: string): string {
  return expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]');
}

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression selects (sorted, once each). */
export function metricNames(expr: string): string[] {
  const text = mask(expr)
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?\w+/g, ' ')
    .replace(/@\s*[\w.()]+/g, ' ');
  const names = new Set<string>();
  const token = /\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|[a-zA-Z_:][\w:]*/g;
  for (let m = token.exec(text); m; m = token.exec(text)) {
    const word = m[0];
    if (/^\d/.test(word) || KEYWORDS.has(word.toLowerCase())) continue;
    if (/^\s*\(/.test(text.slice(m.index + word.length))) continue; // a function or an aggregation
    names.add(word);
  }
  return [...names].sort();
}

/** Each `metric{...}` of an expression with the label names its matchers use. */
export function selectors(expr: string): { metric: string; labels: string[] }[] {
  const out: { metric: string; labels: string[] }[] = [];
  const sel = /([a-zA-Z_:][\w:]*)\s*\{((?:[^}"]|"(?:[^"\\]|\\.)*")*)\}/g;
  for (let m = sel.exec(expr); m; m = sel.exec(expr)) {
    const labels = [...m[2]!.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!);
    out.push({ metric: m[1]!, labels });
  }
  return out;
}

/**
 * The alerting rules of a Prometheus rules file in the block style of ctnet-rules.yml (no
 * flow mappings for rules, block scalars for long expressions). Not a YAML parser: the test
 * compares its count with promtool's, which does parse the file.
 */
export function readAlertRules(text: string): AlertRule[] {
  const lines = text.split('\n');
  const rules: AlertRule[] = [];
  let group = '';
  const indentOf = (line: string) => line.length - line.trimStart().length;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const g = /^\s*- name:\s*(.+?)\s*$/.exec(line);
    if (g) group = unquote(g[1]!);
    const a = /^(\s*)- alert:\s*(.+?)\s*$/.exec(line);
    if (!a) continue;
    const keyIndent = a[1]!.length + 2;
    // The rule's lines: up to the next line indented no deeper than its "- ".
    let end = i + 1;
    while (end < lines.length && (lines[end]!.trim() === '' || lines[end]!.trim().startsWith('#') || indentOf(lines[end]!) >= keyIndent)) end++;
    const body = lines.slice(i + 1, end);
    const fields = new Map<string, string>();
    const sub: Record<'labels' | 'annotations', Map<string, string>> = { labels: new Map(), annotations: new Map() };
    let section: 'labels' | 'annotations' | undefined;
    for (let j = 0; j < body.length; j++) {
      const l = body[j]!;
      if (l.trim() === '' || l.trim().startsWith('#')) continue;
      const kv = /^(\s*)([\w-]+):\s*(.*?)\s*$/.exec(l);
      if (!kv) continue;
      const indent = kv[1]!.length;
      const [, , key, raw] = kv as unknown as [string, string, string, string];
      let value = raw;
      if (/^[|>][-+]?$/.test(raw)) {
        const block: string[] = [];
        while (j + 1 < body.length && (body[j + 1]!.trim() === '' || indentOf(body[j + 1]!) > indent)) block.push(body[++j]!);
        const cut = Math.min(...block.filter((b) => b.trim() !== '').map(indentOf));
        const kept = block.map((b) => b.slice(cut)).join('\n').trim();
        value = raw.startsWith('|') ? kept : kept.split(/\n\s*\n/).map((p) => p.replace(/\s*\n\s*/g, ' ')).join('\n');
      } else value = unquote(raw);
      if (indent === keyIndent) {
        section = key === 'labels' || key === 'annotations' ? key : undefined;
        fields.set(key, value);
      } else if (section && indent > keyIndent) sub[section].set(key, value);
    }
    const expr = fields.get('expr');
    if (!expr) throw new Error(`alert ${a[2]} has no expr that this reader understands (line ${i + 1})`);
    rules.push({
      group,
      alert: unquote(a[2]!),
      expr,
      ...(fields.get('for') && { for: fields.get('for') }),
      labels: Object.fromEntries(sub.labels),
      annotations: [...sub.annotations.keys()],
    });
  }
  return rules;
}

function unquote(value: string): string {
  if (/^'.*'$/.test(value)) return value.slice(1, -1).replace(/''/g, "'");
  if (/^".*"$/.test(value)) return JSON.parse(value) as string;
  return value;
}
