export * from './certs.js';
export * from './token.js';
export * from './files.js';
