import type { DesiredHost, DesiredOverlay } from '../desired/host.js';
import { replaceTableScript, tableInSync, type ActualTable, type NftTable } from '../policy/nft.js';
import type { ActualHost } from './actual.js';
import type { KernelOp } from './ops.js';
import { planOverlays } from './overlay.js';

/**
 * `ctagent diag` and `ctmgr node diag NODE`: one host's picture, per network, of what should
 * be there against what the kernel has. The differences are the reconciler's own plan
 * (planOverlays over the same desired state and a fresh read of the kernel), so the diagnosis
 * can never disagree with what the next run would do. Pure: the agent gathers the inputs.
 */
export interface DiagnoseInput {
  readonly node: string;
  readonly at: string; // when the kernel was read (ISO 8601)
  readonly desired: DesiredHost;
  readonly actual: ActualHost;
  readonly networkNames: ReadonlyMap<string, string>; // network id -> name
  /** Sandbox namespaces that exist on the host now. */
  readonly netns: ReadonlySet<string>;
  /** ctnet's nftables tables: the host's (no netns) and each sandbox's, desired and as read. */
  readonly tables: readonly { readonly netns?: string; readonly desired: NftTable; readonly actual: ActualTable | undefined }[];
  readonly revision: { readonly state: number; readonly applied: number };
  readonly manager: string | undefined; // the manager streamed from, undefined when not connected
  readonly lastReconcile: LastReconcile | undefined;
  readonly driftRepairs: number;
}

export interface LastReconcile {
  readonly at: string;
  readonly reason: string;
  readonly ms: number;
  readonly error?: string;
}

export interface EntryCheck {
  readonly desired: number;
  readonly present: number; // desired entries the kernel has as wanted
  /** The first LIST_LIMIT of each (a report must fit one message however broken the host). */
  readonly missing: readonly string[];
  readonly unexpected: readonly string[];
  readonly unexpectedCount: number;
}

/** At most this many entries of a list go into a report; counts say how many there are. */
export const LIST_LIMIT = 100;

export interface NetworkDiagnosis {
  readonly network: string;
  readonly id: string;
  readonly devices: readonly { readonly name: string; readonly kind: 'bridge' | 'vxlan'; readonly state: string }[];
  readonly gateway: { readonly cidr: string; readonly present: boolean };
  readonly fdb?: EntryCheck; // overlays only
  readonly neigh?: EntryCheck;
  readonly sandboxes: readonly { readonly name: string; readonly netns: string; readonly present: boolean }[];
}

export interface TableCheck {
  readonly table: string;
  readonly netns: string; // '' = the host
  readonly hash: string; // of the desired rule set
  readonly inSync: boolean;
}

export interface HostDiagnosis {
  readonly node: string;
  readonly at: string;
  readonly ok: boolean; // nothing pending, every table in sync, last run clean, connected
  readonly manager: string; // '' when not connected
  readonly revision: { readonly state: number; readonly applied: number };
  readonly lastReconcile: LastReconcile | null;
  readonly driftRepairs: number;
  readonly networks: readonly NetworkDiagnosis[];
  readonly nftables: readonly TableCheck[];
  /** What the next run would change in the host's devices and entries, one line per op (the first LIST_LIMIT). */
  readonly pending: readonly string[];
  readonly pendingCount: number;
}

export function diagnoseHost(input: DiagnoseInput): HostDiagnosis {
  const plan = planOverlays(input.desired, input.actual);
  const networks = input.desired.overlays.map((o) => diagnoseNetwork(o, input, plan));
  const nftables = input.tables.map((t) => ({
    table: t.desired.name,
    netns: t.netns ?? '',
    hash: fnv1a(replaceTableScript(t.desired)),
    inSync: tableInSync(t.desired, t.actual),
  }));
  const ok =
    plan.length === 0 &&
    nftables.every((t) => t.inSync) &&
    !input.lastReconcile?.error &&
    input.manager !== undefined &&
    networks.every((n) => n.sandboxes.every((s) => s.present));
  return {
    node: input.node,
    at: input.at,
    ok,
    manager: input.manager ?? '',
    revision: input.revision,
    lastReconcile: input.lastReconcile ?? null,
    driftRepairs: input.driftRepairs,
    networks,
    nftables,
    pending: plan.slice(0, LIST_LIMIT).map(describeOp),
    pendingCount: plan.length,
  };
}

function diagnoseNetwork(o: DesiredOverlay, input: DiagnoseInput, plan: readonly KernelOp[]): NetworkDiagnosis {
  const on = (dev: string) => plan.filter((op) => ('name' in op ? op.name : op.dev) === dev);
  const deviceState = (name: string): string => {
    const ops = on(name);
    if (ops.some((op) => op.op === 'bridge-add' || op.op === 'vxlan-add')) return 'missing';
    const sets = ops.filter((op) => op.op === 'link-set');
    if (sets.length === 0) return 'ok';
    return `differs (${sets.map((op) => Object.keys(op).filter((k) => k !== 'op' && k !== 'name').join(',')).join(',')})`;
  };
  const devices: NetworkDiagnosis['devices'] = [
    { name: o.bridge, kind: 'bridge', state: deviceState(o.bridge) },
    ...(o.vxlan === '' ? [] : [{ name: o.vxlan, kind: 'vxlan' as const, state: deviceState(o.vxlan) }]),
  ];
  const gateway = { cidr: o.gatewayCidr, present: !plan.some((op) => op.op === 'addr-add' && op.dev === o.bridge && op.cidr === o.gatewayCidr) };
  const sandboxes = input.desired.sandboxes
    .filter((sb) => sb.interfaces.some((i) => i.networkId === o.networkId))
    .map((sb) => ({ name: sb.container.name, netns: sb.netns, present: sb.netns === '' || input.netns.has(sb.netns) }));
  const base = { network: input.networkNames.get(o.networkId) ?? o.networkId, id: o.networkId, devices, gateway, sandboxes };
  if (o.vxlan === '') return base;
  const vx = on(o.vxlan);
  const fdbMissing = vx.flatMap((op) => (op.op === 'fdb-replace' ? [`${op.mac} -> ${op.dst}`] : []));
  const fdbExtra = vx.flatMap((op) => (op.op === 'fdb-del' ? [`${op.mac}${op.dst ? ` -> ${op.dst}` : ''}`] : []));
  const neighMissing = vx.flatMap((op) => (op.op === 'neigh-replace' ? [`${op.ip} -> ${op.mac}`] : []));
  const neighExtra = vx.flatMap((op) => (op.op === 'neigh-del' ? [op.ip] : []));
  return {
    ...base,
    fdb: entryCheck(o.fdb.length, fdbMissing, fdbExtra),
    neigh: entryCheck(o.neigh.length, neighMissing, neighExtra),
  };
}

function entryCheck(desired: number, missing: readonly string[], unexpected: readonly string[]): EntryCheck {
  return {
    desired,
    present: desired - missing.length,
    missing: missing.slice(0, LIST_LIMIT),
    unexpected: unexpected.slice(0, LIST_LIMIT),
    unexpectedCount: unexpected.length,
  };
}

export function describeOp(op: KernelOp): string {
  const { op: kind, ...rest } = op;
  return `${kind} ${Object.entries(rest)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(' ')}`;
}

/** FNV-1a, 32 bits, hex: a short fingerprint of a rule set to compare across hosts by eye. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** The one-screen text form: a headline, then one block per network, then what is pending. */
export function formatDiagnosis(d: HostDiagnosis, maxList = 5): string {
  const lines: string[] = [];
  const last = d.lastReconcile;
  lines.push(`node ${d.node}: ${d.ok ? 'OK' : 'NOT CONVERGED'} (read ${d.at})`);
  lines.push(`  manager      ${d.manager || 'not connected'}`);
  lines.push(`  revision     state ${d.revision.state}, applied ${d.revision.applied}${d.revision.applied < d.revision.state ? ' (behind)' : ''}`);
  lines.push(`  last run     ${last ? `${last.at} (${last.reason}, ${last.ms} ms): ${last.error ? `error: ${last.error}` : 'ok'}` : 'none yet'}`);
  lines.push(`  drift        ${d.driftRepairs} repaired since the agent started`);
  const list = (items: readonly string[], total = items.length): string =>
    items.length === 0 ? '' : `: ${items.slice(0, maxList).join(', ')}${total > maxList ? `, … ${total - maxList} more` : ''}`;
  for (const n of d.networks) {
    lines.push('');
    lines.push(`network ${n.network} (${n.id.slice(0, 12)})`);
    for (const dev of n.devices) lines.push(`  ${dev.kind.padEnd(7)} ${dev.name.padEnd(16)} ${dev.state}`);
    lines.push(`  gateway ${n.gateway.cidr.padEnd(16)} ${n.gateway.present ? 'ok' : 'missing'}`);
    for (const [what, c] of [['fdb', n.fdb], ['neigh', n.neigh]] as const) {
      if (!c) continue;
      const missing = c.desired - c.present;
      lines.push(`  ${what.padEnd(7)} ${c.present}/${c.desired} present${missing ? `; missing ${missing}${list(c.missing, missing)}` : ''}${c.unexpectedCount ? `; unexpected ${c.unexpectedCount}${list(c.unexpected, c.unexpectedCount)}` : ''}`);
    }
    const absent = n.sandboxes.filter((s) => !s.present).map((s) => s.name);
    lines.push(`  sandboxes ${n.sandboxes.length}${absent.length ? `; without a namespace ${absent.length}${list(absent)}` : ''}`);
  }
  lines.push('');
  const bad = d.nftables.filter((t) => !t.inSync);
  const host = d.nftables.find((t) => t.netns === '');
  lines.push(`nftables: host ${host ? `${host.table} ${host.hash} ${host.inSync ? 'in sync' : 'DIFFERS'}` : 'none'}; sandboxes ${d.nftables.length - (host ? 1 : 0)}, out of sync ${bad.filter((t) => t.netns !== '').length}${list(bad.filter((t) => t.netns !== '').map((t) => t.netns))}`);
  lines.push(`pending kernel changes: ${d.pendingCount}${list(d.pending, d.pendingCount)}`);
  return `${lines.join('\n')}\n`;
}
