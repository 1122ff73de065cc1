#!/usr/bin/env node
import { runAgentCli } from './cli.js';

// The only file that touches `process`.
process.exitCode = await runAgentCli(process.argv.slice(2), process.env, {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  onShutdown: (handler) => {
    process.once('SIGINT', handler);
    process.once('SIGTERM', handler);
  },
});
