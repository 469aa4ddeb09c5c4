// Preloaded into a gateway by `bench/soak.mjs` (`node --import ./soak-probe.mjs bin/exoclaw.js …`):
// writes `process.memoryUsage()` as one JSON line to the file named by EXOCLAW_SOAK_PROBE every
// EXOCLAW_SOAK_PROBE_MS (default 1000) ms, so the bench can read the gateway's JS heap without
// the gateway having a metrics endpoint. The timer is unref'd: it never keeps the process alive.
import { appendFileSync } from "node:fs";

const file = process.env.EXOCLAW_SOAK_PROBE;
if (file) {
  const every = Number(process.env.EXOCLAW_SOAK_PROBE_MS ?? 1000);
  const write = () => {
    try {
      appendFileSync(file, `${JSON.stringify({ at: Date.now(), ...process.memoryUsage() })}\n`);
    } catch {
      // the bench removed the file: nothing to report to
    }
  };
  write();
  setInterval(write, every).unref();
}
