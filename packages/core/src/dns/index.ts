export * from './constants.js';
export * from './wire.js';
export * from './answer.js';
export * from './names.js';
export * from './tcp.js';
export * from './query.js';
export * from './zone.js';
