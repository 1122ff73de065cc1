import { defineConfig } from 'vitest/config';

// Integration tests start real etcd and ctmgr processes (and later lab namespaces):
// one file at a time on this 2-core machine, with generous timeouts.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
