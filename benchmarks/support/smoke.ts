/**
 * `npm run bench:smoke`: every `*.bench.ts` in benchmarks/, one at a time, with `--smoke`
 * (tiny sizes), so a benchmark that no longer runs turns CI red. A benchmark fails the smoke
 * run when it exits non-zero, prints no table, runs past its time limit, or leaves something
 * behind: a process of its own (each runs in a process group of its own) or a network
 * namespace that was not there before it started. It never fails for being slow.
 *
 *   tsx support/smoke.ts [NAME...]         (NAME: a benchmark's file name without .bench.ts)
 *
 * Prints each benchmark's output as it comes, then one line per benchmark and a closing line
 * `bench:smoke: N passed, N failed, N skipped (S s)`; exits 1 if any failed.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { constants } from 'node:os';
import { SKIP_STATUS } from './run.js';

const DIR = resolve(import.meta.dirname, '..');
/** Per benchmark; a smoke run takes seconds, so this only catches a hang. */
const LIMIT_MS = Number(process.env.BENCH_SMOKE_LIMIT_MS ?? 90_000);
/** How long a benchmark gets after SIGTERM to stop what it started, before its group is SIGKILLed. */
const GRACE_MS = 20_000;

interface Outcome {
  name: string;
  result: 'passed' | 'failed' | 'skipped';
  why: string;
  seconds: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function namespaces(): Set<string> {
  try {
    return new Set(readdirSync('/run/netns'));
  } catch {
    return new Set();
  }
}

/** Live (non-zombie) processes of process group `pgid`, with their command lines. */
function groupMembers(pgid: number): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp ...": comm may hold spaces or ')', so split after the last ')'.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) !== pgid || state === 'Z') continue;
      found.push(`${entry} ${readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim()}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is empty
  }
}

/** The benchmark now running, so a signal to this runner can stop it first. */
let current: { pgid: number; exited: Promise<unknown> } | undefined;

async function runOne(file: string): Promise<Outcome> {
  const name = file.replace(/\.bench\.ts$/, '');
  const before = namespaces();
  const t0 = performance.now();
  console.log(`\n=== bench:smoke ${name}`);
  // Its own process group (detached), so whatever it starts can be found, and stopped, by group.
  const child = spawn(process.execPath, ['--import', 'tsx', join(DIR, file), '--smoke'], { cwd: DIR, detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    process.stdout.write(c);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const closed = new Promise((r) => child.once('close', r));
  const pgid = child.pid!;
  current = { pgid, exited };

  let timedOut = false;
  let hard: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM'); // the benchmark undoes what it started ...
    hard = setTimeout(() => killGroup(pgid, 'SIGKILL'), GRACE_MS); // ... or its whole group goes
  }, LIMIT_MS);
  const { code, signal } = await exited;
  clearTimeout(timer);
  clearTimeout(hard);
  await Promise.race([closed, sleep(2_000)]); // the rest of its output (unless a leftover holds the pipe)
  current = undefined;
  const seconds = (performance.now() - t0) / 1000;

  // What it left behind. A lab's watchdog (a group of its own) may still be sweeping: give it a moment.
  const problems: string[] = [];
  let left = groupMembers(pgid);
  let leftNs = [...namespaces()].filter((ns) => !before.has(ns));
  for (let i = 0; i < 30 && (left.length || leftNs.length); i++) {
    await sleep(100);
    left = groupMembers(pgid);
    leftNs = [...namespaces()].filter((ns) => !before.has(ns));
  }
  if (left.length) {
    problems.push(`left running (now killed): ${left.join('; ')}`);
    killGroup(pgid, 'SIGKILL');
  }
  if (leftNs.length) problems.push(`left network namespaces: ${leftNs.join(' ')}`);

  if (code === SKIP_STATUS && !problems.length) {
    return { name, result: 'skipped', why: /^skipped: (.*)$/m.exec(out)?.[1] ?? 'cannot run here', seconds };
  }
  if (timedOut) problems.unshift(`still running after ${LIMIT_MS / 1000} s (stopped)`);
  else if (code !== 0) problems.unshift(signal ? `killed by ${signal}` : `exit status ${code}`);
  else if (!/^\|[-| :]+\|$/m.test(out)) problems.unshift('printed no table');
  return { name, result: problems.length ? 'failed' : 'passed', why: problems.join('; '), seconds };
}

async function main(): Promise<number> {
  const only = process.argv.slice(2);
  const files = readdirSync(DIR)
    .filter((f) => f.endsWith('.bench.ts'))
    .filter((f) => !only.length || only.includes(f.replace(/\.bench\.ts$/, '')))
    .sort();
  const unknown = only.filter((n) => !files.includes(`${n}.bench.ts`));
  if (unknown.length) throw new Error(`no such benchmark: ${unknown.join(', ')}`);

  const t0 = performance.now();
  const outcomes: Outcome[] = [];
  for (const f of files) outcomes.push(await runOne(f));
  const total = (performance.now() - t0) / 1000;

  console.log('\nbench:smoke (tiny sizes: proves each benchmark runs; its figures mean nothing)');
  console.log('| benchmark | result | s | why |');
  console.log('|---|---|---|---|');
  for (const o of outcomes) console.log(`| ${o.name} | ${o.result} | ${o.seconds.toFixed(1)} | ${o.why || '-'} |`);
  const count = (r: Outcome['result']) => outcomes.filter((o) => o.result === r).length;
  for (const o of outcomes.filter((x) => x.result === 'failed')) console.error(`bench:smoke: FAILED ${o.name}: ${o.why}`);
  console.log(`bench:smoke: ${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped (${total.toFixed(0)} s)`);
  return count('failed') ? 1 : 0;
}

// Stopped from outside: stop the running benchmark the way the time limit does, then leave.
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(s, () => {
    const status = 128 + (constants.signals[s] ?? 1);
    if (!current) process.exit(status);
    const { pgid, exited } = current;
    try {
      process.kill(pgid, 'SIGTERM');
    } catch {
      // exiting already
    }
    const timer = setTimeout(() => killGroup(pgid, 'SIGKILL'), GRACE_MS);
    void exited.then(() => {
      clearTimeout(timer);
      process.exit(status);
    });
  });
}

main().then(
  (status) => process.exit(status),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
