import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Interop tests start real NBD clients and mount real file systems; they share the loop devices
    // and FUSE of one machine, so files run one at a time and each test may take a while.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // expect.poll waits on real agents and a real browser: a busy 2-core machine is slow, not broken
    // (Vitest's own default is 1 s).
    expect: { poll: { timeout: 30_000, interval: 100 } },
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
