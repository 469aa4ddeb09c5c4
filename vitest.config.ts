import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    // Stress tests load every core on purpose: `npm run test:stress` runs them alone; long fault
    // runs (`*.fault.test.ts`, kill -9 bursts, NATS outages) run in `npm run test:faults`.
    exclude: ["tests/**/*.stress.test.ts", "tests/**/*.fault.test.ts", "**/node_modules/**"],
    // Installs nats-server once (fresh machine, as root) before the workers start.
    globalSetup: ["tests/support/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The end-to-end suites start real gateway processes; keep CPU contention sane on 2 cores.
    maxWorkers: 2,
    // The journal deep-freezes the event objects it shares with its projector's queue, so a
    // caller that modifies one fails its test (host/src/store/journal/freeze.ts).
    env: { EXOCLAW_FREEZE_SHARED_EVENTS: "1" },
  },
});
