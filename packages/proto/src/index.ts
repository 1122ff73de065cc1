export * from './gen/ctnet/v1/model.js';
export * from './gen/ctnet/v1/manager.js';
export * from './gen/ctnet/v1/agent.js';
export * from './convert/model.js';
export * from './transport.js';
