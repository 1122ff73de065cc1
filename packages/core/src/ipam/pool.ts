import { alreadyExists, invalidArgument, ErrorCode, CtnetError } from '../errors.js';
import { cidrContains, cidrLast, formatCidr, formatIPv4, parseCidr, parseIPv4 } from '../net/ipv4.js';
import type { Network } from '../model/network.js';

/**
 * The address plan of one network, precomputed from its record: which addresses may be
 * handed out and which are reserved. Pure; the allocator combines it with the claims in etcd.
 */
export interface AddressPlan {
  readonly first: number; // first assignable address (inclusive)
  readonly last: number; // last assignable address (inclusive)
  readonly reserved: ReadonlySet<number>;
  readonly subnet: string;
  readonly ipRange: string;
}

export function planAddresses(net: Network): AddressPlan {
  const subnet = parseCidr(net.subnet);
  const range = parseCidr(net.ipRange);
  const reserved = new Set<number>([subnet.base, cidrLast(subnet), parseIPv4(net.gateway)]);
  for (const addr of Object.values(net.auxAddresses)) reserved.add(parseIPv4(addr));
  return {
    first: Math.max(range.base, subnet.base + 1),
    last: Math.min(cidrLast(range), cidrLast(subnet) - 1),
    reserved,
    subnet: net.subnet,
    ipRange: net.ipRange,
  };
}

export function isAssignable(plan: AddressPlan, addr: number): boolean {
  return addr >= plan.first && addr <= plan.last && !plan.reserved.has(addr);
}

/** How many addresses the network can hand out in all. */
export function assignableCount(plan: AddressPlan): number {
  if (plan.last < plan.first) return 0;
  let count = plan.last - plan.first + 1;
  for (const addr of plan.reserved) if (addr >= plan.first && addr <= plan.last) count--;
  return count;
}

/**
 * Sequential allocation with wrap-around, as Docker's bitmask allocator does: the search
 * starts just after `cursor` (the last address handed out), so an address that was just
 * freed is not reused at once and a stale cache elsewhere does not reach its new owner.
 */
export function nextFreeAddress(
  plan: AddressPlan,
  cursor: number | undefined,
  isTaken: (addr: number) => boolean,
): number | undefined {
  const span = plan.last - plan.first + 1;
  if (span <= 0) return undefined;
  const start = cursor === undefined || cursor < plan.first || cursor >= plan.last ? plan.first : cursor + 1;
  for (let i = 0; i < span; i++) {
    const addr = plan.first + ((start - plan.first + i) % span);
    if (!plan.reserved.has(addr) && !isTaken(addr)) return addr;
  }
  return undefined;
}

/** Checks a static request (--ip) against the plan; the claim in etcd decides whether it is free. */
export function parseStaticAddress(plan: AddressPlan, text: string, networkName: string): number {
  const addr = parseIPv4(text, 'requested address');
  const subnet = parseCidr(plan.subnet);
  if (!cidrContains(subnet, addr)) {
    throw invalidArgument(`address ${text} is outside subnet ${plan.subnet} of network ${networkName}; pick one inside it`);
  }
  if (!cidrContains(parseCidr(plan.ipRange), addr)) {
    throw invalidArgument(`address ${text} is outside the ip-range ${plan.ipRange} of network ${networkName}; pick one inside it`);
  }
  if (plan.reserved.has(addr)) {
    throw invalidArgument(
      `address ${text} is reserved in network ${networkName} (network, broadcast, gateway or aux address); pick another`,
    );
  }
  return addr;
}

export function addressTaken(text: string, networkName: string, owner: string): CtnetError {
  return alreadyExists(`address ${text} is already in use in network ${networkName} by ${owner}; pick another or omit --ip`);
}

export function poolExhausted(networkName: string, plan: AddressPlan): CtnetError {
  return new CtnetError(
    ErrorCode.ResourceExhausted,
    `network ${networkName} has no free address left in ${plan.ipRange}; remove endpoints or create a network with a larger subnet`,
  );
}

