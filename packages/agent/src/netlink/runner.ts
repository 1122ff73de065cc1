import { execa } from 'execa';
import { unavailable } from '@ctnet/core';

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  /** The process's exit status; -1 when it was killed by a signal. */
  readonly exitCode: number;
}

/**
 * Runs one program with an argv and optional stdin. The netlink layer only ever talks to the
 * kernel through this, so tests can script it and the lab test can run it for real.
 * Resolves whatever the exit status (callers decide what a failure means); rejects only when
 * the program could not be started at all.
 */
export interface CommandRunner {
  run(cmd: string, args: readonly string[], opts?: { input?: string }): Promise<RunResult>;
}

export function createExecaRunner(): CommandRunner {
  return {
    async run(cmd, args, opts) {
      const result = await execa(cmd, args, {
        reject: false,
        shell: false, // argv goes to the program as is: device names never meet a shell
        input: opts?.input ?? '',
        stripFinalNewline: false,
        // `ip -j neigh show` with 100k entries is ~9 MB; leave headroom over execa's default.
        maxBuffer: 256 * 1024 * 1024,
      });
      // execa reports a spawn failure (ENOENT, EACCES) as a result with no exit code and no signal.
      if (result.exitCode === undefined && result.signal === undefined) {
        throw unavailable(
          `cannot run "${cmd}": ${result.originalMessage ?? result.shortMessage}; install iproute2 (it provides ip and bridge) and check PATH`,
          result.cause,
        );
      }
      return {
        stdout: String(result.stdout ?? ''),
        stderr: String(result.stderr ?? ''),
        exitCode: result.exitCode ?? -1,
      };
    },
  };
}
