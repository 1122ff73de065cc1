/** What the lab benchmarks share: a checked command, waiting for the agents, a first-reply pinger. */
import { spawn } from 'node:child_process';
import type { Lab } from '../../test/src/lab/lab.js';

/** The command's stdout; its stderr as the error when it fails. */
export async function ok(p: Promise<{ code: number; stdout: string; stderr: string }>): Promise<string> {
  const r = await p;
  if (r.code !== 0) throw new Error(r.stderr || r.stdout);
  return r.stdout;
}

/** Until every host's agent is ready (at most 20 s). */
export async function waitNodesReady(lab: Lab): Promise<void> {
  for (let i = 0; i < 200 && ((await lab.ctmgr('node', 'ls')).stdout.match(/ready/g) ?? []).length < lab.hosts.length; i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Pings IP from namespace NS until the first reply and resolves with when it came (ms since
 * the epoch). One ping per attempt: ping itself gives up once the neighbour lookup has
 * failed, which is what happens before the address exists. The sleep keeps the loop from
 * starving the 2 cores.
 */
export function firstReply(ns: string, ip: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const loop = 'while ! ping -c1 -W0.05 -n "$1" >/dev/null 2>&1; do sleep 0.005; done; date +%s%N';
    const p = spawn('ip', ['netns', 'exec', ns, 'timeout', '10', 'sh', '-c', loop, 'sh', ip], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    p.on('exit', () => (out.trim() ? resolve(Number(out.trim()) / 1e6) : reject(new Error(`no reply from ${ip}`))));
  });
}
