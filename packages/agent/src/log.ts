export { createLogger, type Logger } from '@ctnet/core';
