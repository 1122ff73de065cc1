import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  KIT,
  alertQueries,
  dashboardPanels,
  dashboardQueries,
  dataForm,
  kitQueries,
  metricNames,
  readAlertRules,
  scrapeTargetLabels,
  selectors,
  substituteVariables,
  targetLabelsOf,
  type Dashboard,
} from './lab/prometheus-kit.js';

// The monitoring kit, checked without a cluster: promtool validates the config, the rules and
// their unit tests; the dashboard and the rules may only use metrics the code defines.

const REPO = resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);

async function promtool(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args, { cwd: dirname(KIT.rules) });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error("promtool is not installed: run deploy/setup.sh (it installs Debian's prometheus package)");
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary';
/** labels undefined: prom-client's default metrics, whose labels are prom-client's. */
interface Defined {
  readonly type: MetricType;
  readonly labels?: readonly string[];
  /** The package under packages/ that defines it (undefined: Prometheus' own). */
  readonly pkg?: string;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('.d.ts'))
    .map((f) => join(dir, f));
}

/** The text of the call's argument list starting at `open` (an opening parenthesis). */
function argumentsAt(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return text.slice(open + 1, i);
  }
  throw new Error(`unbalanced parentheses after offset ${open}`);
}

/**
 * Every metric packages/*\/src defines: `new Counter|Gauge|Histogram|Summary({ name: '...' })`,
 * and prom-client's default metrics under each `collectDefaultMetrics({ prefix })` (asked of
 * the prom-client the defining package uses). prom-client exposes a counter under its name
 * as given (ours end in _total), a histogram as _bucket, _sum and _count.
 */
async function definedMetrics(): Promise<Map<string, Defined>> {
  const defined = new Map<string, Defined>();
  for (const pkg of readdirSync(join(REPO, 'packages'))) {
    const src = join(REPO, 'packages', pkg, 'src');
    let files: string[];
    try {
      files = sources(src);
    } catch {
      continue;
    }
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/new\s+(Counter|Gauge|Histogram|Summary)\s*(?:<[^>]*>)?\s*\(/g)) {
        const args = argumentsAt(text, m.index + m[0].length - 1);
        const name = /\bname:\s*(['"`])([^'"`]+)\1/.exec(args)?.[2];
        if (!name) throw new Error(`${file}: a ${m[1]} whose name is not a string literal; this test cannot see it`);
        const labels = /\blabelNames:\s*\[([^\]]*)\]/.exec(args)?.[1]?.match(/[\w]+/g) ?? [];
        defined.set(name, { type: m[1]!.toLowerCase() as MetricType, labels, pkg });
      }
      for (const m of text.matchAll(/collectDefaultMetrics\s*\(/g)) {
        const prefix = /\bprefix:\s*(['"`])([^'"`]+)\1/.exec(argumentsAt(text, m.index + m[0].length - 1))?.[2] ?? '';
        const promClient = createRequire(join(REPO, 'packages', pkg, 'package.json'))('prom-client') as typeof import('prom-client');
        const registry = new promClient.Registry();
        promClient.collectDefaultMetrics({ register: registry, prefix });
        for (const metric of await registry.getMetricsAsJSON()) defined.set(metric.name, { type: String(metric.type) as MetricType, pkg });
        registry.clear();
      }
    }
  }
  return defined;
}

/** The job of prometheus.yml that scrapes each package's metrics. */
const JOB_OF_PACKAGE: Readonly<Record<string, string>> = { manager: 'ctnet-manager', agent: 'ctnet-agent' };
const PROMETHEUS_OWN: ReadonlyMap<string, Defined> = new Map([['up', { type: 'gauge', labels: [] }]]);

/** The labels a series of this metric gets at scrape time: its job's (every job's for Prometheus' own). */
function targetLabelsFor(def: Defined, jobs: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const job = def.pkg === undefined ? undefined : JOB_OF_PACKAGE[def.pkg];
  const sets = job === undefined ? [...jobs.values()] : [jobs.get(job) ?? new Set<string>()];
  return sets.flatMap((s) => [...s]);
}

/** "<job>: ..." for every target label that would replace a label of a metric that job scrapes. */
function collisions(jobs: ReadonlyMap<string, ReadonlySet<string>>, defined: ReadonlyMap<string, Defined>): string[] {
  const out: string[] = [];
  for (const [name, def] of defined) {
    const job = def.pkg === undefined ? undefined : JOB_OF_PACKAGE[def.pkg];
    const labels = job === undefined ? undefined : jobs.get(job);
    for (const label of def.labels ?? []) {
      if (labels?.has(label)) out.push(`${job}: its target label ${label} would replace the ${label} label of ${name} (renamed exported_${label})`);
    }
  }
  return out;
}

/** The series name `name` stands for: the metric that defines it and the extra labels it may carry. */
function resolveSeries(name: string, defined: ReadonlyMap<string, Defined>): { def: Defined; extra: string[] } | undefined {
  const own = defined.get(name) ?? PROMETHEUS_OWN.get(name);
  if (own && (own.type === 'counter' || own.type === 'gauge')) return { def: own, extra: [] };
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  const base = m && defined.get(m[1]!);
  if (!m || !base) return undefined;
  if (base.type === 'histogram') return { def: base, extra: m[2] === 'bucket' ? ['le'] : [] };
  if (base.type === 'summary' && m[2] !== 'bucket') return { def: base, extra: [] };
  return undefined;
}

/** "<query id>: <problem>" for every series name no metric stands for, and every matcher on a label it lacks. */
function problems(queries: readonly { id: string; expr: string }[], known: ReadonlyMap<string, Defined>): string[] {
  const jobs = scrapeTargetLabels();
  const out: string[] = [];
  for (const q of queries) {
    for (const name of metricNames(q.expr)) if (!resolveSeries(name, known)) out.push(`${q.id}: ${name} is not a metric packages/*/src defines`);
    for (const s of selectors(q.expr)) {
      const found = resolveSeries(s.metric, known);
      if (!found?.def.labels) continue;
      const allowed = new Set([...found.def.labels, ...found.extra, ...targetLabelsFor(found.def, jobs)]);
      for (const label of s.labels) if (!allowed.has(label)) out.push(`${q.id}: ${s.metric} has no label ${label} (it has ${[...allowed].join(', ')})`);
    }
  }
  return out;
}

const dashboard = (): Dashboard => JSON.parse(readFileSync(KIT.dashboard, 'utf8')) as Dashboard;
const rules = () => readAlertRules(readFileSync(KIT.rules, 'utf8'));

describe('promtool', () => {
  it('accepts prometheus.yml and the rules file it loads', async () => {
    const r = await promtool('check', 'config', KIT.config);
    expect(r.out).toMatch(/SUCCESS: 1 rule files found/);
    expect(r.out).toMatch(/is valid prometheus config file/);
    expect(r.code, r.out).toBe(0);
  });

  it('accepts the rules, and the kit reads as many alerts as promtool does', async () => {
    const r = await promtool('check', 'rules', KIT.rules);
    expect(r.code, r.out).toBe(0);
    const found = Number(/SUCCESS: (\d+) rules found/.exec(r.out)?.[1]);
    expect(rules().map((x) => x.alert)).toHaveLength(found);
  });

  it('passes the rules unit tests', async () => {
    const r = await promtool('test', 'rules', KIT.rulesTest);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS/);
  });

  it('parses every dashboard query and every alert data form', async () => {
    const queries = kitQueries();
    const dir = await mkdtemp(join(tmpdir(), 'ctnet-kit-'));
    try {
      const file = join(dir, 'queries.yml');
      // JSON is YAML: one recording rule per expression, for promtool's parser.
      const exprs = [...queries.map((q) => q.expr), ...queries.map((q) => q.data)];
      await writeFile(file, JSON.stringify({ groups: [{ name: 'kit', rules: exprs.map((expr, i) => ({ record: `ctnet_kit:query_${i}`, expr })) }] }));
      const r = await promtool('check', 'rules', file);
      expect(r.code, r.out).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the alerting rules', () => {
  it('each have a for, a severity, a summary and a description, and a threshold to drop for its data form', () => {
    const all = rules();
    expect(all.length).toBeGreaterThan(0);
    for (const r of all) {
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(r.labels.severity, r.alert).toMatch(/^(critical|warning)$/);
      expect(r.annotations, r.alert).toEqual(expect.arrayContaining(['summary', 'description']));
      expect(dataForm(r.expr).length, r.alert).toBeLessThan(r.expr.length);
    }
  });

  it('each have a case in ctnet-rules.test.yml where they fire', () => {
    const tests = readFileSync(KIT.rulesTest, 'utf8');
    for (const r of rules()) {
      const firing = new RegExp(`alertname: ${r.alert}\\s*\\n\\s*exp_alerts:\\s*\\n\\s*- exp_labels:`);
      expect(tests, `${r.alert} never fires in ctnet-rules.test.yml`).toMatch(firing);
    }
  });
});

describe('the dashboard', () => {
  it('queries Prometheus through a ${datasource} variable, and every target has an expr', () => {
    const d = dashboard();
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(d.templating?.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }));
    const panels = dashboardPanels(d);
    expect(panels.length).toBeGreaterThan(10);
    const ids = (d.panels ?? []).flatMap((p) => [p.id, ...(p.panels ?? []).map((n) => n.id)]);
    expect(new Set(ids).size, 'panel ids are unique').toBe(ids.length);
    for (const p of panels) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, `${p.title} has no targets`).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        expect(typeof t.expr === 'string' && t.expr.trim() !== '', `${p.title} [${t.refId}] has no expr`).toBe(true);
        expect(t.datasource?.uid ?? '${datasource}', p.title).toBe('${datasource}');
      }
    }
  });
});

describe('metric names', () => {
  it('every metric the dashboard and the rules use is one packages/*/src defines, with the labels they select', async () => {
    expect(problems(kitQueries(), await definedMetrics())).toEqual([]);
  });

  it('a renamed metric, a histogram without its suffix and a label the metric lacks are caught', async () => {
    const defined = await definedMetrics();
    for (const name of ['ctnet_node_lag_revisions', 'ctnet_agent_dns_answer_seconds']) expect(defined.get(name), name).toBeDefined();
    const renamed = new Map(defined);
    renamed.delete('ctnet_node_lag_revisions');
    renamed.delete('ctnet_agent_dns_answer_seconds');
    const found = problems(kitQueries(), renamed).join('\n');
    expect(found).toMatch(/Lag per node \(revisions\) \[A\]: ctnet_node_lag_revisions is not a metric/);
    expect(found).toMatch(/CtnetAgentLagging: ctnet_node_lag_revisions is not a metric/);
    expect(found).toMatch(/DNS latency p50 \/ p99 \[B\]: ctnet_agent_dns_answer_seconds_bucket is not a metric/);
    const wrong = [
      { id: 'bare histogram', expr: 'rate(ctnet_agent_reconcile_seconds[1m])' },
      { id: 'counter with a suffix', expr: 'ctnet_agent_drift_repairs_total_count' },
      { id: 'no such label', expr: 'ctnet_nodes{state="down"}' },
      { id: "another job's target label", expr: 'ctnet_nodes{node="h1"}' },
      { id: 'target label of its job', expr: 'ctnet_agent_sandboxes{node="h1"}' },
    ];
    expect(problems(wrong, defined)).toEqual([
      'bare histogram: ctnet_agent_reconcile_seconds is not a metric packages/*/src defines',
      'counter with a suffix: ctnet_agent_drift_repairs_total_count is not a metric packages/*/src defines',
      'no such label: ctnet_nodes has no label state (it has status, job, instance)',
      "another job's target label: ctnet_nodes has no label node (it has status, job, instance)",
    ]);
  });

  it('sees the default process metrics of both processes', async () => {
    const defined = await definedMetrics();
    for (const name of ['ctnet_manager_process_resident_memory_bytes', 'ctnet_agent_nodejs_eventloop_lag_p99_seconds', 'ctnet_agent_process_cpu_seconds_total']) {
      expect(defined.get(name), name).toBeDefined();
    }
  });

  it("prometheus.yml's target labels replace no label of the metrics their job scrapes", async () => {
    const defined = await definedMetrics();
    const jobs = scrapeTargetLabels();
    expect([...jobs.keys()].sort()).toEqual(Object.values(JOB_OF_PACKAGE).sort());
    expect(jobs.get('ctnet-agent')).toEqual(new Set(['job', 'instance', 'node']));
    expect(collisions(jobs, defined)).toEqual([]);
    // a manager target labelled node: m1 would turn ctnet_node_ready{node="h1"} into {node="m1", exported_node="h1"}
    const labelled = readFileSync(KIT.config, 'utf8').replace("- targets: ['10.0.0.5:4701']\n", "- targets: ['10.0.0.5:4701']\n        labels: { node: m1 }\n");
    expect(collisions(targetLabelsOf(labelled), defined)).toEqual(
      expect.arrayContaining(['ctnet-manager: its target label node would replace the node label of ctnet_node_ready (renamed exported_node)']),
    );
  });
});

describe('the queries for a lab', () => {
  it('list every dashboard target and every alert, with Grafana variables replaced', () => {
    const d = dashboardPanels(dashboard()).flatMap((p) => p.targets ?? []);
    const dash = dashboardQueries();
    const alerts = alertQueries();
    expect(dash).toHaveLength(d.length);
    expect(alerts.map((a) => a.id)).toEqual(rules().map((r) => r.alert));
    for (const q of [...dash, ...alerts]) {
      expect(q.expr, q.id).not.toMatch(/\$|\[\[/);
      expect(q.metrics.length, q.id).toBeGreaterThan(0);
    }
    const byId = new Map([...dash, ...alerts].map((q) => [q.id, q]));
    expect(byId.get('Lag per node (revisions) [A]')).toMatchObject({ expr: 'min by (node) (ctnet_node_lag_revisions{instance=~".*", node=~".*"})', needs: [] });
    expect(byId.get('Docker plugin calls by method and result [A]')?.needs).toEqual(['docker-plugin']);
    expect(byId.get('Service convergence [A]')?.needs).toEqual(['service']);
    expect(byId.get('IPAM usage per network [A]')?.needs).toEqual([]);
    expect(byId.get('CtnetNodeDown')).toMatchObject({ expr: 'max by (node) (ctnet_node_ready) == 0', data: 'max by (node) (ctnet_node_ready)', needs: [] });
    expect(byId.get('CtnetAgentLagging')).toMatchObject({ data: 'min by (node) (min_over_time(ctnet_node_lag_revisions[10m]))', needs: [] });
    expect(byId.get('CtnetDnsServfail')?.needs).toEqual([]);
    expect(new Set([...dash, ...alerts].flatMap((q) => q.needs))).toEqual(new Set(['service', 'docker-plugin']));
  });

  it('replace variables and drop thresholds as a lab needs', () => {
    expect(substituteVariables('rate(x{instance=~"$instance", m=~"${manager:regex}"}[$__rate_interval]) offset $__interval')).toBe('rate(x{instance=~".*", m=~".*"}[1m]) offset 1m');
    expect(substituteVariables('x{instance=~"$instance"}', { instance: 'h1:4702' })).toBe('x{instance=~"h1:4702"}');
    expect(dataForm('(a or b * 0) > 0')).toBe('(a or b * 0)');
    expect(dataForm('a / b\n  >= 1e-3\n')).toBe('a / b');
    expect(() => dataForm('a > 0 and b > 0')).toThrow(/more than one comparison/);
    expect(() => dataForm('absent(up)')).toThrow(/no threshold/);
    expect(metricNames('histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="y(z)"}[5m]))) / on (i) group_left (j) b offset 5m > bool 1e-9')).toEqual(['a_bucket', 'b']);
  });
});
