import { MARKER } from '../batch.js';
import type { CommandRunner, RunResult } from '../runner.js';

export interface RecordedCall {
  readonly cmd: string;
  readonly args: readonly string[];
  readonly input?: string;
}

/**
 * A CommandRunner for unit tests: records every call and answers with `answer` (a function
 * of the call, so a test can play the kernel's part). Test-only; production code builds
 * createExecaRunner().
 */
export function createFakeRunner(
  answer: (call: RecordedCall) => Partial<RunResult> | Promise<Partial<RunResult>>,
): CommandRunner & { readonly calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  return {
    calls,
    async run(cmd, args, opts) {
      const call: RecordedCall = { cmd, args: [...args], ...(opts?.input === undefined ? {} : { input: opts.input }) };
      calls.push(call);
      const r = await answer(call);
      return { stdout: r.stdout ?? '', stderr: r.stderr ?? '', exitCode: r.exitCode ?? 0 };
    },
  };
}

/** What `ip`/`bridge -force -batch` print when every line is accepted: only the markers' reports. */
export function markersOnly(input: string): string {
  return input
    .split('\n')
    .flatMap((line, i) => (line === MARKER.ip || line === MARKER.bridge ? ['Not enough information: "dev" argument is required.', `Command failed -:${i + 1}`] : []))
    .join('\n');
}
