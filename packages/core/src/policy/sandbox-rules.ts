import type { DesiredInterface, DesiredSandbox } from '../desired/host.js';
import type { NftTable } from './nft.js';
import type { VipBackends } from './traffic.js';
import { spreadTo } from './traffic.js';

/**
 * The interface whose gateway is the embedded resolver: the first on a bridge of this host.
 * A macvlan interface's gateway is the segment's router, and the sandbox cannot reach its own
 * host through it; a sandbox only on macvlan networks uses the host's resolvers instead.
 */
export function resolverInterface(sb: DesiredSandbox): DesiredInterface | undefined {
  return sb.interfaces.find((i) => i.kind !== 'macvlan');
}

/** The table ctnet owns inside each sandbox's namespace. */
export const SANDBOX_TABLE = 'ctnet';

/**
 * A sandbox's own rules (pure), as Swarm does inside each container: `127.0.0.11:53` handed
 * to the embedded resolver at the gateway, and every service VIP on the sandbox's networks
 * spread over the service's running tasks (a new connection takes the next task; an existing
 * one keeps its task, conntrack remembers). Balancing where the client is means the reply
 * comes straight back, with no address translation on any host. A VIP with no running task
 * refuses at once (TCP reset / ICMP port unreachable) instead of timing out.
 */
export function desiredSandboxRules(sb: DesiredSandbox, vips: readonly VipBackends[]): NftTable {
  if (!sb.ownsNetns || sb.interfaces.length === 0) return { family: 'ip', name: SANDBOX_TABLE, chains: [] };
  const first = resolverInterface(sb);
  const out = first ? [`ip daddr 127.0.0.11 udp dport 53 dnat to ${first.gateway}:53`, `ip daddr 127.0.0.11 tcp dport 53 dnat to ${first.gateway}:53`] : [];
  const refuse: string[] = [];
  const nets = new Set(sb.interfaces.map((i) => i.networkId));
  for (const v of vips) {
    if (!nets.has(v.networkId)) continue;
    if (v.backends.length > 0) out.push(`ip daddr ${v.vip} ${spreadTo(v.backends)}`);
    else refuse.push(`ip daddr ${v.vip} meta l4proto tcp reject with tcp reset`, `ip daddr ${v.vip} reject`);
  }
  return {
    family: 'ip',
    name: SANDBOX_TABLE,
    chains: [
      { name: 'nat_out', base: { type: 'nat', hook: 'output', priority: -100, policy: 'accept' }, rules: out },
      {
        name: 'nat_post',
        base: { type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' },
        rules: first ? [`ip saddr 127.0.0.0/8 ip daddr ${first.gateway} snat to ${first.cidr.split('/')[0]!}`] : [],
      },
      { name: 'filter_out', base: { type: 'filter', hook: 'output', priority: 0, policy: 'accept' }, rules: refuse },
      // route_localnet (for 127.0.0.11) would also let a neighbour send to 127.0.0.1 over the
      // network and reach what listens on loopback only (CVE-2020-8558): such packets die here.
      { name: 'martians', base: { type: 'filter', hook: 'prerouting', priority: -300, policy: 'accept' }, rules: ['iifname != "lo" ip daddr 127.0.0.0/8 drop'] },
    ],
  };
}
