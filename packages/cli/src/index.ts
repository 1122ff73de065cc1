export type { Command, CommandContext, ManagerApi, Writer } from './api.js';
export { COMMANDS } from './commands/index.js';
export { errorFromGrpc, GrpcManagerApi, DEFAULT_TIMEOUT_MS } from './grpc-api.js';
export { type CliIo, DEFAULT_MANAGER, type Env, runCli, type ServeIo, type ServeMain } from './run.js';
export { VERSION } from './version.js';
