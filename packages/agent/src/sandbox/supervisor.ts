import type { DesiredSandbox, TaskStatus } from '@ctnet/core';
import type { SandboxRecord } from './runtime.js';

/**
 * Watches the processes of local containers: what state each is in (reported to the manager,
 * which records it and so drives every host's DNS), and when a service task that died is due
 * to start again. Restarts back off exponentially (200 ms doubling to 10 s) and the streak
 * resets once a task has run for 10 s, as Swarm's restart policy does.
 */
export interface ObservedState {
  readonly name: string;
  readonly containerId: string;
  readonly status: TaskStatus;
}

export interface Supervision {
  /** Every local container's current state. */
  readonly states: readonly ObservedState[];
  /** Tasks due to start again now, with the record of their last run. */
  readonly restart: readonly { readonly sandbox: DesiredSandbox; readonly record: SandboxRecord }[];
  /** When the next restart falls due (ms since the epoch), if one is waiting. */
  readonly nextDue?: number;
}

export const RESTART_BASE_MS = 200;
export const RESTART_MAX_MS = 10_000;
export const STABLE_AFTER_MS = 10_000;

export interface Supervisor {
  /** A process we started ended (from its exit event; adopted ones are found by polling). */
  exited(name: string, code: number | null, signal: string | null): void;
  evaluate(sandboxes: readonly DesiredSandbox[], records: ReadonlyMap<string, SandboxRecord>, alive: (r: SandboxRecord) => boolean, now: number): Supervision;
}

export const restartDelay = (streak: number): number => Math.min(RESTART_BASE_MS * 2 ** Math.min(streak, 16), RESTART_MAX_MS);

export function createSupervisor(): Supervisor {
  // name -> how its last run ended, when first seen ended
  const ends = new Map<string, { pid: number; at: number; code: number | null; signal: string | null }>();
  const exitEvents = new Map<string, { code: number | null; signal: string | null }>();
  return {
    exited(name, code, signal) {
      exitEvents.set(name, { code, signal });
    },
    evaluate(sandboxes, records, alive, now) {
      const states: ObservedState[] = [];
      const restart: { sandbox: DesiredSandbox; record: SandboxRecord }[] = [];
      let nextDue: number | undefined;
      const present = new Set<string>();
      for (const sb of sandboxes) {
        const c = sb.container;
        present.add(c.name);
        const record = records.get(c.name);
        const since = new Date(now).toISOString();
        if (!record || record.containerId !== c.id) {
          states.push({ name: c.name, containerId: c.id, status: { state: 'starting', message: '', exitCode: 0, restarts: 0, since } });
          continue;
        }
        const restarts = record.restarts ?? 0;
        if (alive(record)) {
          ends.delete(c.name);
          states.push({ name: c.name, containerId: c.id, status: { state: 'running', message: '', exitCode: 0, restarts, since: record.startedAt } });
          continue;
        }
        let end = ends.get(c.name);
        if (!end || end.pid !== record.pid) {
          const ev = exitEvents.get(c.name);
          exitEvents.delete(c.name);
          end = { pid: record.pid, at: now, code: ev?.code ?? null, signal: ev?.signal ?? null };
          ends.set(c.name, end);
        }
        const code = end.code ?? (end.signal ? 128 + signalNumber(end.signal) : -1);
        const failed = code !== 0;
        const message = end.signal ? `killed by ${end.signal}` : end.code !== null ? `exit code ${end.code}` : 'the process ended';
        states.push({
          name: c.name,
          containerId: c.id,
          status: { state: failed ? 'failed' : 'exited', message, exitCode: code, restarts, since: new Date(end.at).toISOString() },
        });
        // Tasks restart (Swarm's default condition "any"); plain containers stay as they ended.
        if (!c.task || c.task.desired !== 'running' || c.attachPid > 0) continue;
        const ranFor = end.at - Date.parse(record.startedAt);
        const streak = ranFor >= STABLE_AFTER_MS ? 0 : (record.streak ?? 0);
        const due = end.at + restartDelay(streak);
        if (due <= now) restart.push({ sandbox: sb, record: { ...record, streak: streak + 1 } });
        else nextDue = Math.min(nextDue ?? due, due);
      }
      for (const name of [...ends.keys()]) if (!present.has(name)) ends.delete(name);
      for (const name of [...exitEvents.keys()]) if (!present.has(name)) exitEvents.delete(name);
      return { states, restart, ...(nextDue !== undefined && { nextDue }) };
    },
  };
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };
const signalNumber = (name: string): number => SIGNALS[name] ?? 0;
