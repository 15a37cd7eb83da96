import { defineConfig } from 'vitest/config';

// Projects (run them with --project NAME):
//   unit  parsers and pure analysis over captured fixtures
//   e2e   the built agent on fixture trees, /metrics diffed against golden files
//   v1    real cgroup v1 on this machine (root)
//   v2    real cgroup v2; run inside ../shared/cgv2vm by scripts/test-v2.sh
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], testTimeout: 30_000 } },
      {
        test: {
          name: 'v1', include: ['test/integration/v1/**/*.test.ts'],
          // Real kernel work on a noisy shared machine: generous time-outs, one file at a time.
          testTimeout: 120_000, hookTimeout: 60_000, fileParallelism: false,
        },
      },
      {
        test: {
          name: 'v2', include: ['test/integration/v2/**/*.test.ts'],
          testTimeout: 300_000, hookTimeout: 120_000, fileParallelism: false,
        },
      },
    ],
  },
});
