import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The end-to-end suites start real gateway processes; keep CPU contention sane on 2 cores.
    maxWorkers: 2,
  },
});
