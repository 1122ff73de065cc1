export { serveMain, SERVE_USAGE, type ServeIo } from './main.js';
export { startManager, type RunningManager } from './manager.js';
export { handlers, createManagerService } from './grpc-adapter.js';
export { toServiceError, fromServiceError } from '@ctnet/proto';
export { createLogger, systemClock, type Clock, type Logger } from './deps.js';
