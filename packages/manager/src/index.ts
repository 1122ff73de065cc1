export { serveMain, SERVE_USAGE, type ServeIo } from './main.js';
export { startManager, type RunningManager } from './manager.js';
export { toServiceError, fromServiceError, handlers } from './grpc-adapter.js';
export { createLogger, systemClock, type Clock, type Logger } from './deps.js';
