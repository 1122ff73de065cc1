export type { CommandRunner, RunResult } from './runner.js';
export { createExecaRunner } from './runner.js';
export { renderIpBatch, renderBridgeBatch, renderIpOp, renderBridgeOp } from './render.js';
export { parseLinks, parseAddrs, parseFdb, parseNeigh } from './parse.js';
export { readActual, applyOps, type ApplyResult, type ApplyFailure, type KernelOptions } from './kernel.js';
export { kernelError, kernelErrorCode } from './errors.js';
