/**
 * Synchronous teardowns run when the test process ends without destroying its labs: on
 * 'exit' (a thrown error, process.exit, vitest closing the worker) and on SIGINT, SIGTERM
 * and SIGHUP. A signal handler tears down, then re-raises the signal if nobody else listens,
 * so the process still dies the way the sender meant. SIGKILL is left to the watchdog.
 */
type Teardown = () => void;

const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const live = new Set<Teardown>();

function runAll(): void {
  for (const teardown of [...live]) {
    live.delete(teardown);
    try {
      teardown();
    } catch (err) {
      process.stderr.write(`lab teardown failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runAll();
  uninstall();
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function install(): void {
  process.on('exit', runAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  process.off('exit', runAll);
  for (const s of SIGNALS) process.off(s, onSignal);
}

/** Registers a teardown; the returned function unregisters it (call it once torn down). */
export function onProcessEnd(teardown: Teardown): () => void {
  if (live.size === 0) install();
  live.add(teardown);
  return () => {
    if (live.delete(teardown) && live.size === 0) uninstall();
  };
}
