#!/usr/bin/env node
import { runCli } from './run.js';

// The only file that touches `process`: argv, env, the output streams, the signals that
// stop `ctmgr serve`, and the exit code (set, not forced, so pending output is flushed).
// No top-level await: the bundled executable (deploy/bundle.mjs) is CommonJS.
void runCli(process.argv.slice(2), process.env, {
  out: process.stdout,
  err: process.stderr,
  onShutdown: (handler) => {
    process.once('SIGINT', handler);
    process.once('SIGTERM', handler);
  },
}).then((code) => {
  process.exitCode = code;
});
