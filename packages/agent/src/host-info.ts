import { invalidArgument } from '@ctnet/core';
import type { CommandRunner } from './netlink/runner.js';

/** What the agent learns about its host at start: the underlay MTU and the routes to report. */
export interface HostInfo {
  readonly underlayDev: string;
  readonly underlayMtu: number;
  readonly routes: readonly string[];
}

export async function readHostInfo(runner: CommandRunner, advertiseAddr: string): Promise<HostInfo> {
  const addrs = await runner.run('ip', ['-j', '-4', 'addr', 'show']);
  const links = (addrs.stdout.trim() ? JSON.parse(addrs.stdout) : []) as {
    ifname: string;
    mtu: number;
    addr_info?: { local: string }[];
  }[];
  const dev = links.find((l) => (l.addr_info ?? []).some((a) => a.local === advertiseAddr));
  if (!dev) {
    const here = links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local)).filter((a) => a !== '127.0.0.1');
    throw invalidArgument(
      `advertise address ${advertiseAddr} is not on this host; use one of: ${here.join(', ') || '(no IPv4 address besides loopback)'}`,
    );
  }
  const routes = await runner.run('ip', ['-j', '-4', 'route', 'show']);
  const list = (routes.stdout.trim() ? JSON.parse(routes.stdout) : []) as { dst: string; dev?: string }[];
  return {
    underlayDev: dev.ifname,
    underlayMtu: dev.mtu,
    // Our own bridges' routes are not the host's: reporting them would keep their subnets "taken".
    routes: list.filter((r) => !(r.dev ?? '').startsWith('ctbr-')).map((r) => r.dst),
  };
}
