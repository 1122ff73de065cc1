import { invalidArgument, tryParseIPv4, type KernelOp } from '@ctnet/core';

/**
 * Renders kernel ops into `ip -batch -` and `bridge -batch -` lines. Pure. Every field is
 * validated first: a batch is one stream, so a stray space or newline in a device name would
 * shift every later line, and a value iproute2 cannot parse makes it exit(255) mid-batch
 * (`invarg`) even under `-force`, dropping the rest.
 *
 * Each form below was checked against the kernel (iproute2 6.1, kernel 6.x) in
 * kernel.lab.test.ts; the surprises are noted where they shape the line.
 */

/** One op as `ip` lines. Usually one line; `neigh-del` needs two (see below). */
export function renderIpOp(op: KernelOp): string[] {
  switch (op.op) {
    case 'bridge-add':
      // `mtu` must come before `type`: after `type bridge` ip parses the rest as bridge
      // options and rejects `mtu` ("bridge: unknown command").
      return [`link add dev ${dev(op.name)}${op.mac ? ` address ${mac(op.mac)}` : ''} mtu ${mtu(op.mtu)} type bridge`];
    case 'vxlan-add':
      return [
        `link add dev ${dev(op.name)} mtu ${mtu(op.mtu)} type vxlan id ${vni(op.vni)} dstport ${port(op.port)} ` +
          `local ${ipv4(op.local)} nolearning proxy`,
      ];
    case 'link-set': {
      const lines: string[] = [];
      const attrs: string[] = [];
      if (op.mtu !== undefined) attrs.push(`mtu ${mtu(op.mtu)}`);
      if (op.master !== undefined) attrs.push(`master ${dev(op.master)}`);
      if (op.mac !== undefined) attrs.push(`address ${mac(op.mac)}`);
      if (op.up !== undefined) attrs.push(op.up ? 'up' : 'down');
      if (attrs.length > 0) lines.push(`link set dev ${dev(op.name)} ${attrs.join(' ')}`);
      // Only learning can be changed on a live VXLAN device: the kernel refuses any PROXY
      // attribute in a changelink ("vxlan: cannot change PROXY flag"), even when the value is
      // unchanged, so `nolearning proxy` would always fail. A device without proxy must be
      // recreated (link-del + vxlan-add) by the planner.
      if (op.vxlanFlags) lines.push(`link set dev ${dev(op.name)} type vxlan nolearning`);
      if (lines.length === 0) throw invalidArgument(`link-set for "${op.name}" changes nothing; give mtu, master, up or vxlanFlags`);
      return lines;
    }
    case 'link-del':
      return [`link del dev ${dev(op.name)}`];
    case 'addr-add':
    case 'addr-del':
      return [`addr ${op.op === 'addr-add' ? 'add' : 'del'} ${cidr(op.cidr)} dev ${dev(op.dev)}`];
    case 'neigh-replace':
      return [`neigh replace ${ipv4(op.ip)} lladdr ${mac(op.mac)} dev ${dev(op.dev)} nud permanent`];
    case 'neigh-del': {
      // `ip neigh` calls exit(2) when the kernel rejects a change, even under `-force`, so a
      // `neigh del` of an entry that is already gone would end the whole batch. Replacing it
      // first with an unresolved (FAILED, no lladdr, never answered by the ARP proxy) entry
      // makes the delete always find it: the op becomes idempotent at the cost of one message.
      const [ip, d] = [ipv4(op.ip), dev(op.dev)];
      return [`neigh replace ${ip} dev ${d} nud failed`, `neigh del ${ip} dev ${d}`];
    }
    case 'fdb-replace':
    case 'fdb-del':
      throw invalidArgument(`${op.op} is a bridge op; render it with renderBridgeOp`);
  }
}

/** One op as a `bridge` line. */
export function renderBridgeOp(op: KernelOp): string {
  switch (op.op) {
    case 'fdb-replace':
      // `self`: the entry goes into the VXLAN device's own table (where `dst` means the
      // remote VTEP), not into the bridge's.
      return `fdb replace ${mac(op.mac)} dev ${dev(op.dev)} dst ${ipv4(op.dst)} self permanent`;
    case 'fdb-del':
      // With `dst`, only that remote is removed, and a `dst` the entry does not have is a
      // silent no-op (the kernel returns success). Without it, the whole entry goes.
      return `fdb del ${mac(op.mac)} dev ${dev(op.dev)}${op.dst === undefined ? '' : ` dst ${ipv4(op.dst)}`} self`;
    default:
      throw invalidArgument(`${op.op} is an ip op; render it with renderIpOp`);
  }
}

/** The `ip -batch -` script for ops (all must be ip ops), one op after another. */
export function renderIpBatch(ops: readonly KernelOp[]): string {
  return ops.flatMap(renderIpOp).map((l) => `${l}\n`).join('');
}

/** The `bridge -batch -` script for ops (all must be fdb ops). */
export function renderBridgeBatch(ops: readonly KernelOp[]): string {
  return ops.map((op) => `${renderBridgeOp(op)}\n`).join('');
}

// Kernel rule (dev_valid_name): 1-15 bytes, not "." or "..", no '/', ':' or whitespace. We
// also refuse a leading '-' (an option to iproute2), and quotes, backslash and '#', which its
// batch tokenizer interprets ('#' starts a comment). Names always follow an explicit `dev`
// keyword, so a device called "up" or "h" (a prefix of "help") is not read as a keyword.
const DEV = /^[^\s/:'"\\#-][^\s/:'"\\#]{0,14}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

export function dev(name: string): string {
  if (!DEV.test(name) || name === '.' || name === '..') {
    throw invalidArgument(`device name "${name}" is not valid; use 1-15 characters without spaces, '/', ':' or quotes`);
  }
  return name;
}

function mac(text: string): string {
  if (!MAC.test(text)) throw invalidArgument(`MAC address "${text}" is not valid; write it as six hex pairs, e.g. 02:42:0a:00:00:05`);
  return text.toLowerCase(); // the kernel prints lower case; compare like with like
}

function ipv4(text: string): string {
  if (tryParseIPv4(text) === undefined) throw invalidArgument(`"${text}" is not an IPv4 address, e.g. 10.0.0.5`);
  return text;
}

function cidr(text: string): string {
  const [addr = '', prefix = '', ...rest] = text.split('/');
  if (rest.length > 0 || tryParseIPv4(addr) === undefined || !/^(0|[1-9][0-9]?)$/.test(prefix) || Number(prefix) > 32) {
    throw invalidArgument(`"${text}" is not an IPv4 address with prefix, e.g. 10.10.0.1/24`);
  }
  return text;
}

function intIn(value: number, min: number, max: number, what: string): string {
  if (!Number.isInteger(value) || value < min || value > max) throw invalidArgument(`${what} ${value} is out of range ${min}-${max}`);
  return String(value);
}

const mtu = (v: number): string => intIn(v, 68, 65535, 'MTU'); // 68: IPv4's minimum
const vni = (v: number): string => intIn(v, 0, 0xffffff, 'VNI'); // 24 bits
const port = (v: number): string => intIn(v, 1, 65535, 'UDP port');
