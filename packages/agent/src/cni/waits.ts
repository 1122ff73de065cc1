/**
 * Waiting on the reconciler: local callers (the CNI plugin) wait for a condition that a
 * reconcile run makes true, checked again at the end of every run, with a deadline.
 */
export interface RunWaits {
  /** A run ended: the revision it planned from, and the sandboxes it could not make (name -> why). */
  ran(revision: number, failed: ReadonlyMap<string, string>): void;
  /** The state changed (a stream message): waiters check again without waiting for a run. */
  poke(): void;
  /** Why the last run could not make this container's sandbox, if it could not. */
  failure(name: string): string | undefined;
  /** Resolves with the first defined result of check; checked now and after every run (at least each second). */
  until<T>(timeoutMs: number, timeoutMessage: string, check: () => Promise<T | undefined>): Promise<T>;
}

export function waitForRuns(): RunWaits {
  const wakers = new Set<() => void>();
  let failed: ReadonlyMap<string, string> = new Map();
  return {
    ran(_revision, f) {
      failed = f;
      for (const w of [...wakers]) w();
    },
    poke() {
      for (const w of [...wakers]) w();
    },
    failure: (name) => failed.get(name),
    async until(timeoutMs, timeoutMessage, check) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const v = await check();
        if (v !== undefined) return v;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(timeoutMessage);
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            wakers.delete(done);
            resolve();
          };
          const timer = setTimeout(done, Math.min(left, 1000));
          wakers.add(done);
        });
      }
    },
  };
}
