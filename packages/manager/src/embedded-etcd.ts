import { join } from 'node:path';
import { startEtcdProcess, type EtcdProcess } from '@ctnet/store';
import type { Logger } from './deps.js';

/**
 * The embedded default: ctmgr runs a single-member etcd from PATH on loopback ports that
 * do not clash with a stock etcd (23790/23791 rather than 2379/2380), restarts it with
 * backoff if it dies, and stops it on shutdown.
 */
export interface EmbeddedEtcd {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export async function startEmbeddedEtcd(dataDir: string, clientPort: number, log: Logger): Promise<EmbeddedEtcd> {
  const opts = { dataDir: join(dataDir, 'etcd'), clientPort, peerPort: clientPort + 1, name: 'ctmgr' };
  let current: EtcdProcess = await startEtcdProcess(opts);
  let stopping = false;
  log.info('embedded etcd started', { endpoint: current.endpoint, pid: current.pid, dataDir: opts.dataDir });

  const supervise = (proc: EtcdProcess, delay: number): void => {
    void proc.exited.then(async (code) => {
      if (stopping) return;
      log.error(`embedded etcd exited (${code}); restarting in ${delay} ms`, { log: join(opts.dataDir, 'etcd.log') });
      await new Promise((r) => setTimeout(r, delay));
      if (stopping) return;
      try {
        current = await startEtcdProcess(opts);
        log.info('embedded etcd restarted', { pid: current.pid });
        supervise(current, 500);
      } catch (err) {
        log.error('embedded etcd failed to restart', { error: err instanceof Error ? err.message : String(err) });
        supervise(proc, Math.min(delay * 2, 30_000));
      }
    });
  };
  supervise(current, 500);
  return {
    endpoint: current.endpoint,
    stop: async () => {
      stopping = true;
      await current.stop();
    },
  };
}
