import { CtnetError, ErrorCode, alreadyExists } from '../errors.js';
import { type Cidr, cidrLast, cidrOverlaps, cidrSize, formatCidr } from '../net/ipv4.js';
import { VNI_AUTO_START, VNI_MAX } from '../model/network.js';

/** A range to keep new subnets clear of, and why (shown when a requested subnet collides). */
export interface Occupied {
  readonly cidr: Cidr;
  readonly what: string; // e.g. 'network app', 'excluded range', 'route on node h1'
}

export function findOverlap(subnet: Cidr, occupied: readonly Occupied[]): Occupied | undefined {
  return occupied.find((o) => cidrOverlaps(subnet, o.cidr));
}

export function checkSubnetFree(subnet: Cidr, occupied: readonly Occupied[]): void {
  const clash = findOverlap(subnet, occupied);
  if (clash) {
    throw alreadyExists(
      `subnet ${formatCidr(subnet)} overlaps ${formatCidr(clash.cidr)} (${clash.what}); pick a subnet that overlaps no other network, excluded range or host route`,
    );
  }
}

/**
 * Picks the first /`size` block of the pools that overlaps nothing occupied, in pool order.
 * A clash skips straight past the occupied range, so the search is linear in the number of
 * occupied ranges, not in the size of the pool.
 */
export function pickSubnet(pools: readonly Cidr[], size: number, occupied: readonly Occupied[]): Cidr {
  for (const pool of pools) {
    if (size < pool.prefix) continue;
    const step = 2 ** (32 - size);
    let base = pool.base;
    while (base + step - 1 <= cidrLast(pool)) {
      const candidate = { base, prefix: size };
      const clash = findOverlap(candidate, occupied);
      if (!clash) return candidate;
      const after = cidrLast(clash.cidr) + 1;
      base = Math.max(base + step, Math.ceil(after / step) * step);
    }
  }
  throw new CtnetError(
    ErrorCode.ResourceExhausted,
    `no free /${size} left in the default address pools (${pools.map(formatCidr).join(', ')}); pass --subnet or add a pool with --default-addr-pool`,
  );
}

export function pickVni(taken: ReadonlySet<number>): number {
  for (let vni = VNI_AUTO_START; vni <= VNI_MAX; vni++) if (!taken.has(vni)) return vni;
  throw new CtnetError(ErrorCode.ResourceExhausted, 'every VNI is in use; remove unused overlay networks');
}

