// Removes everything a lab left behind, synchronously: the one teardown path shared by
// lab.destroy(), the process exit/signal handlers and the watchdog (which runs this file
// with plain node after the test process died, hence JavaScript without dependencies).
//
// "Everything a lab left behind" is exactly the namespaces whose names start with
// "<prefix>-" (its own, and the sandboxes agents created with CTNET_NETNS_PREFIX=<prefix>-s),
// and the processes still running inside them: the ones the lab started, and what those
// started in turn (the manager's embedded etcd, a sandbox's processes). The prefix is random
// per run, so nothing else can match; nothing is ever looked up by process name.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export const NETNS_DIR = '/run/netns';
export const PREFIX_RE = /^ct[0-9a-f]{6}$/;

/**
 * Deletion order: sandboxes first (their veth peers live in hosts), then hosts and the
 * manager, the underlay last. Any order is correct; this one keeps every step meaningful.
 * @param {string} prefix
 * @param {readonly string[]} names
 * @returns {string[]}
 */
export function deletionOrder(prefix, names) {
  const rank = (/** @type {string} */ ns) => (ns === `${prefix}-ul` ? 2 : ns.startsWith(`${prefix}-s`) ? 0 : 1);
  return names.filter((ns) => ns.startsWith(`${prefix}-`)).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** @param {string} prefix @returns {string[]} the lab's namespaces that exist now, in deletion order */
export function ownedNamespaces(prefix) {
  checkPrefix(prefix);
  let names;
  try {
    names = readdirSync(NETNS_DIR);
  } catch {
    return []; // no /run/netns: no namespaces at all
  }
  return deletionOrder(prefix, names);
}

/** @param {string} ns @returns {number[]} the processes whose network namespace is ns */
export function pidsIn(ns) {
  try {
    const out = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return out.split(/\s+/).filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}

/** @param {number} pid @returns {boolean} true while the process exists and is not a zombie */
export function isAlive(pid) {
  if (!(pid > 0)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ...": the state follows the last ')' since comm may contain spaces or ')'.
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return false;
  }
}

/** @param {number} ms */
export function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * SIGKILLs every process still inside the lab's namespaces, waits (up to waitMs) for them to
 * go, then deletes the namespaces. Best effort: returns what failed instead of throwing.
 * @param {string} prefix
 * @param {{ waitMs?: number }} [opts]
 * @returns {string[]} problems, empty when the lab is gone
 */
export function sweepSync(prefix, opts = {}) {
  checkPrefix(prefix);
  const problems = [];
  // Two rounds: a process killed in round one may have been creating a sandbox namespace.
  for (let round = 0; round < 2; round++) {
    const victims = [];
    for (const ns of ownedNamespaces(prefix)) {
      for (const pid of pidsIn(ns)) {
        if (pid === process.pid) continue;
        try {
          process.kill(pid, 'SIGKILL');
          victims.push(pid);
        } catch {
          // already gone
        }
      }
    }
    const end = Date.now() + (opts.waitMs ?? 3000);
    while (victims.some(isAlive) && Date.now() < end) sleepSync(20);
    const stuck = victims.filter(isAlive);
    if (round === 1 && stuck.length) problems.push(`processes ${stuck.join(', ')} survived SIGKILL`);
    if (!victims.length) break;
  }
  // Deleting a namespace unmounts its /run/netns entry; the kernel frees it (and the veth
  // ends inside, which takes their peers with them) once no process holds it.
  for (const ns of ownedNamespaces(prefix)) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      const stderr = /** @type {{ stderr?: Buffer }} */ (err).stderr?.toString().trim();
      problems.push(`ip netns del ${ns}: ${stderr || String(err)}`);
    }
  }
  const left = ownedNamespaces(prefix);
  if (left.length) problems.push(`namespaces still present: ${left.join(' ')}`);
  return problems;
}

/** @param {string} prefix */
function checkPrefix(prefix) {
  // A wrong prefix here could match someone else's namespaces: refuse anything but ours.
  if (!PREFIX_RE.test(prefix)) throw new Error(`refusing to sweep namespaces for prefix "${prefix}": expected "ct" and 6 hex digits`);
}
