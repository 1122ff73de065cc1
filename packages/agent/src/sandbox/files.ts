import { resolverInterface, type DesiredSandbox } from '@ctnet/core';

/**
 * /etc/netns/<ns>/{resolv.conf,hosts}: `ip netns exec` bind-mounts these over /etc, so the
 * container sees them as its own. Pure: content only; writing is the runtime's job.
 */
export function resolvConf(sb: DesiredSandbox, hostResolvConf: string): string {
  const c = sb.container;
  const first = resolverInterface(sb);
  if (first) {
    // The embedded resolver at the gateway answers cluster names and forwards the rest to
    // --dns (or the host's resolvers), as Docker's 127.0.0.11 does.
    const lines = [`nameserver ${first.gateway}`];
    if (c.dnsSearch.length > 0) lines.push(`search ${c.dnsSearch.join(' ')}`);
    lines.push('options ndots:0');
    return `${lines.join('\n')}\n`;
  }
  if (c.dns.length === 0 && c.dnsSearch.length === 0) return hostResolvConf;
  const lines: string[] = [];
  const upstream = hostResolvConf.split('\n').filter((l) => /^\s*nameserver\s/.test(l));
  for (const ns of c.dns) lines.push(`nameserver ${ns}`);
  if (c.dns.length === 0) lines.push(...upstream);
  if (c.dnsSearch.length > 0) lines.push(`search ${c.dnsSearch.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** The nameservers of a resolv.conf (the host's upstreams for forwarded names). */
export function nameservers(resolv: string): string[] {
  return resolv
    .split('\n')
    .map((l) => /^\s*nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/.exec(l)?.[1])
    .filter((x): x is string => x !== undefined);
}

export function hostsFile(sb: DesiredSandbox): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  const names = [...new Set([sb.container.hostname, sb.container.name])].join(' ');
  for (const itf of sb.interfaces) lines.push(`${itf.cidr.split('/')[0]}\t${names}`);
  // Docker's --link: the alias first, then the linked container's name
  for (const l of sb.container.links ?? []) lines.push(`${l.ip}\t${l.alias === l.name ? l.name : `${l.alias} ${l.name}`}`);
  return `${lines.join('\n')}\n`;
}
