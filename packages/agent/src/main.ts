#!/usr/bin/env node
import { runAgentCli } from './cli.js';

// The only file that touches `process`.
// No top-level await: the bundled executable (deploy/bundle.mjs) is CommonJS.
void runAgentCli(process.argv.slice(2), process.env, {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  onShutdown: (handler) => {
    process.once('SIGINT', handler);
    process.once('SIGTERM', handler);
  },
}).then((code) => {
  process.exitCode = code;
});
