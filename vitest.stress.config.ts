import { defineConfig } from "vitest/config";

/**
 * Stress tests (`npm run test:stress`): files named `*.stress.test.ts`, which load every core on
 * purpose (busy threads) to shake out races. Kept out of `npm test`, where they would starve the
 * other files running beside them; `.ci/run` runs them after the main suite, alone.
 */
export default defineConfig({
  test: {
    include: ["tests/**/*.stress.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
    globalSetup: ["tests/support/global-setup.ts"],
  },
});
