import type { ContainerState } from '@ctnet/proto';
import type { ObservedState } from './sandbox/supervisor.js';

/**
 * Sends the manager what changed in the local containers' states, and everything again after
 * a reconnect (the manager we reach now may be another one, or may have missed a report).
 */
export interface StateReporter {
  update(states: readonly ObservedState[]): void;
  resendAll(): void;
}

export function createStateReporter(send: (states: readonly ContainerState[]) => boolean): StateReporter {
  const latest = new Map<string, ObservedState>();
  const sent = new Map<string, string>(); // name -> what the manager was last told
  // "since" of a state is part of what we report, but not what makes it new.
  const key = (s: ObservedState) => `${s.containerId}|${s.status.state}|${s.status.restarts}|${s.status.exitCode}`;
  const flush = (states: readonly ObservedState[]): void => {
    if (states.length === 0) return;
    if (send(states.map((s) => ({ name: s.name, containerId: s.containerId, status: { ...s.status } })))) {
      for (const s of states) sent.set(s.name, key(s));
    }
  };
  return {
    update(states) {
      const names = new Set(states.map((s) => s.name));
      for (const name of [...latest.keys()]) if (!names.has(name)) (latest.delete(name), sent.delete(name));
      const changed: ObservedState[] = [];
      for (const s of states) {
        latest.set(s.name, s);
        if (sent.get(s.name) !== key(s)) changed.push(s);
      }
      flush(changed);
    },
    resendAll() {
      sent.clear();
      flush([...latest.values()]);
    },
  };
}

/**
 * Sends the host's network problems, and its Docker's networks of other drivers (names no
 * ctnet network may take), when they change, and again after a reconnect.
 */
export interface ProblemReporter {
  update(problems: ReadonlyMap<string, string>): void;
  updateDocker(networks: ReadonlyMap<string, string>): void;
  resend(): void;
}

export function createProblemReporter(send: (problems: Record<string, string>, dockerNetworks: Record<string, string>) => boolean): ProblemReporter {
  let latest: Record<string, string> = {};
  let docker: Record<string, string> = {};
  let sent: string | undefined; // what the manager was last told
  const sorted = (m: ReadonlyMap<string, string>) => Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)));
  const flush = (): void => {
    const text = JSON.stringify([latest, docker]);
    if (text !== sent && send(latest, docker)) sent = text;
  };
  return {
    update(problems) {
      latest = sorted(problems);
      flush();
    },
    updateDocker(networks) {
      docker = sorted(networks);
      flush();
    },
    resend() {
      sent = undefined;
      flush();
    },
  };
}
