export { runAgentCli, USAGE } from './cli.js';
export { startAgent } from './agent.js';
export { createLocalState, type LocalState } from './state.js';
export { readActual, applyOps, createExecaRunner, type CommandRunner } from './netlink/index.js';
