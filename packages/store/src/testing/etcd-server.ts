import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { freePort, startEtcdProcess, type EtcdProcess } from '../etcd-process.js';

/** A throwaway etcd for tests and benchmarks: free loopback ports, a temporary data dir. */
export interface TestEtcd {
  readonly endpoint: string;
  readonly process: EtcdProcess;
  readonly dataDir: string;
  stop(): Promise<void>;
}

export async function startTestEtcd(opts: { onDisk?: boolean } = {}): Promise<TestEtcd> {
  // tmpfs keeps fsync cheap for tests; benchmarks ask for a real disk.
  const base = !opts.onDisk && existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dataDir = await mkdtemp(join(base, 'ctnet-etcd-'));
  for (let attempt = 0; ; attempt++) {
    try {
      const [clientPort, peerPort] = [await freePort(), await freePort()];
      const proc = await startEtcdProcess({ dataDir: join(dataDir, `try${attempt}`), clientPort, peerPort });
      return {
        endpoint: proc.endpoint,
        process: proc,
        dataDir,
        stop: async () => {
          await proc.stop();
          await rm(dataDir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      if (attempt >= 2) {
        await rm(dataDir, { recursive: true, force: true });
        throw err;
      }
    }
  }
}
