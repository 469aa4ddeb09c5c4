/**
 * Vitest global set-up: runs once in the main process before any test worker starts.
 *
 * Installs `nats-server` here (Debian, as root) when it is missing, so that `npm test` on a fresh
 * machine with only Node and npm passes, and parallel test files never race to install it.
 * On a machine where it cannot be installed (not root, not Debian) it does nothing: the bus tests
 * then fail naming the command to run (tests/bus/nats-server.ts).
 */
import { ensureNatsServer } from "../../scripts/ensure-nats.mjs";

export default function setup(): void {
  try {
    const path = ensureNatsServer();
    process.env.NATS_SERVER ??= path;
  } catch (err) {
    process.stderr.write(`global-setup: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}
