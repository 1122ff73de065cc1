import { CtnetError, ErrorCode, type ActualAddr, type ActualFdb, type ActualLink, type ActualNeigh } from '@ctnet/core';

/**
 * Parses iproute2's JSON (`-j`) output into the Actual* shapes, so nothing past this file
 * sees a raw string. Pure. Lenient about entries (an entry without the fields we need is
 * skipped, not fatal: iproute2 versions differ in what they print) and strict about the
 * document (output that is not a JSON array means we misread the kernel, so we say so).
 *
 * IPv4 only: IPv6 addresses, neighbours and VTEPs are dropped here, so the diff never plans
 * to delete the kernel's own link-local addresses or IPv6 neighbours.
 */

/** `ip -j -d link show` */
export function parseLinks(stdout: string): ActualLink[] {
  const out: ActualLink[] = [];
  for (const e of entries(stdout, 'ip -j -d link show')) {
    const name = str(e.ifname);
    if (name === undefined) continue;
    const info = obj(e.linkinfo);
    const kind = str(info?.info_kind) ?? '';
    const master = str(e.master);
    const link: ActualLink = {
      name,
      kind,
      mtu: num(e.mtu) ?? 0,
      ...(master === undefined ? {} : { master }),
      // IFF_UP (administratively up), not operstate: a VXLAN device reports UNKNOWN and a
      // bridge with no ports DOWN even when up.
      up: words(e.flags).includes('UP'),
      mac: (str(e.address) ?? '').toLowerCase(),
    };
    out.push(kind === 'vxlan' ? { ...link, vxlan: vxlanOf(obj(info?.info_data) ?? {}) } : link);
  }
  return out;
}

function vxlanOf(d: Record<string, unknown>): NonNullable<ActualLink['vxlan']> {
  return {
    vni: num(d.id) ?? -1,
    port: num(d.port) ?? -1,
    local: str(d.local) ?? '', // an IPv6 underlay appears as "local6": not ours, so ''
    // iproute2 always prints "learning" (the kernel always sends it); the kernel's default is
    // on, so a missing field reads as on and the planner turns it off.
    learning: bool(d.learning) ?? true,
    // iproute2 6.1 prints "proxy" only when it is on.
    proxy: bool(d.proxy) ?? false,
  };
}

/** `ip -j addr show` */
export function parseAddrs(stdout: string): ActualAddr[] {
  const out: ActualAddr[] = [];
  for (const e of entries(stdout, 'ip -j addr show')) {
    const dev = str(e.ifname);
    if (dev === undefined || !Array.isArray(e.addr_info)) continue;
    for (const a of e.addr_info) {
      const info = obj(a);
      const local = str(info?.local);
      const prefix = num(info?.prefixlen);
      if (info?.family !== 'inet' || local === undefined || prefix === undefined) continue;
      out.push({ dev, cidr: `${local}/${prefix}` });
    }
  }
  return out;
}

/**
 * `bridge -j fdb show`. Keeps each device's own (`self`) table: on a VXLAN device that is the
 * MAC -> VTEP table we program. Entries of a bridge's table (they carry `master`, e.g. the
 * bridge's local MAC on each port and learned MACs) are left out: `fdb del ... self` cannot
 * remove them, so a diff that saw them would plan the same failing delete on every pass.
 * A MAC with several remotes (e.g. the all-zero flood entry) is one entry per `dst`.
 */
export function parseFdb(stdout: string): ActualFdb[] {
  const out: ActualFdb[] = [];
  for (const e of entries(stdout, 'bridge -j fdb show')) {
    const mac = str(e.mac);
    const dev = str(e.ifname);
    if (mac === undefined || dev === undefined) continue;
    if (e.master !== undefined && !words(e.flags).includes('self')) continue;
    const dst = str(e.dst);
    if (dst?.includes(':')) continue; // IPv6 VTEP
    out.push({
      dev,
      mac: mac.toLowerCase(),
      ...(dst === undefined ? {} : { dst }),
      // "permanent", "static", "stale" or "" (dynamic); a string in 6.1, tolerate a list.
      permanent: words(e.state).includes('permanent'),
    });
  }
  return out;
}

/** `ip -j neigh show` */
export function parseNeigh(stdout: string): ActualNeigh[] {
  const out: ActualNeigh[] = [];
  for (const e of entries(stdout, 'ip -j neigh show')) {
    const ip = str(e.dst);
    const dev = str(e.dev);
    if (ip === undefined || dev === undefined || ip.includes(':')) continue;
    const mac = str(e.lladdr); // absent while INCOMPLETE or FAILED
    out.push({
      dev,
      ip,
      ...(mac === undefined ? {} : { mac: mac.toLowerCase() }),
      // A list such as ["PERMANENT"] or ["REACHABLE"]; tolerate a plain string.
      permanent: words(e.state).includes('PERMANENT'),
    });
  }
  return out;
}

function entries(stdout: string, command: string): Record<string, unknown>[] {
  const text = stdout.trim();
  // Some iproute2 versions print nothing at all (not "[]") for an empty table.
  if (text === '') return [];
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CtnetError(
      ErrorCode.Internal,
      `cannot parse the JSON output of \`${command}\` (${(err as Error).message}); iproute2 may be too old for -j, install 5.x or later`,
      { cause: err },
    );
  }
  if (!Array.isArray(doc)) {
    throw new CtnetError(ErrorCode.Internal, `\`${command}\` printed JSON that is not a list; is this iproute2's output?`);
  }
  return doc.flatMap((e): Record<string, unknown>[] => {
    const o = obj(e);
    return o ? [o] : [];
  });
}

const obj = (v: unknown): Record<string, unknown> | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
const words = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((w): w is string => typeof w === 'string') : typeof v === 'string' ? [v] : [];
