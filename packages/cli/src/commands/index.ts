import type { Command } from '../api.js';
import { endpointCreate } from './endpoint-create.js';
import { endpointLs } from './endpoint-ls.js';
import { endpointRm } from './endpoint-rm.js';
import { networkCreate } from './network-create.js';
import { networkInspect } from './network-inspect.js';
import { networkLs } from './network-ls.js';
import { networkRm } from './network-rm.js';
import { nodeInspect } from './node-inspect.js';
import { nodeLs } from './node-ls.js';
import { nodeRm } from './node-rm.js';

/** Every `ctmgr <noun> <verb>`, in the order `ctmgr --help` lists them. */
export const COMMANDS: readonly Command[] = [
  networkCreate,
  networkLs,
  networkInspect,
  networkRm,
  nodeLs,
  nodeInspect,
  nodeRm,
  endpointCreate,
  endpointLs,
  endpointRm,
];
