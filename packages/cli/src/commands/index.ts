import type { Command } from '../api.js';
import { containerInspect } from './container-inspect.js';
import { containerPs } from './container-ps.js';
import { containerRm } from './container-rm.js';
import { containerRun } from './container-run.js';
import { containerPort } from './container-port.js';
import { endpointCreate } from './endpoint-create.js';
import { endpointLs } from './endpoint-ls.js';
import { endpointRm } from './endpoint-rm.js';
import { networkConnect, networkDisconnect } from './network-connect.js';
import { containerLogs } from './container-logs.js';
import { networkCreate } from './network-create.js';
import { networkInspect } from './network-inspect.js';
import { networkLs } from './network-ls.js';
import { networkRm } from './network-rm.js';
import { nodeInspect } from './node-inspect.js';
import { nodeDiag } from './node-diag.js';
import { nodeLs } from './node-ls.js';
import { nodeRm } from './node-rm.js';
import { adminCert, caRotate, joinToken } from './security.js';
import { serviceCreate, serviceInspect, serviceLs, servicePs, serviceRm, serviceScale } from './service.js';

/**
 * Every command, in the order `ctmgr --help` lists them: first the Docker-style container
 * verbs (`ctmgr run`), then each `ctmgr <noun> <verb>`.
 */
export const COMMANDS: readonly Command[] = [
  containerRun,
  containerPs,
  containerInspect,
  containerRm,
  containerLogs,
  containerPort,
  networkCreate,
  networkLs,
  networkInspect,
  networkRm,
  networkConnect,
  networkDisconnect,
  serviceCreate,
  serviceLs,
  serviceInspect,
  servicePs,
  serviceScale,
  serviceRm,
  nodeLs,
  nodeInspect,
  nodeDiag,
  nodeRm,
  endpointCreate,
  endpointLs,
  endpointRm,
  joinToken,
  adminCert,
  caRotate,
];
