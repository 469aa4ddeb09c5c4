// Order per session through a NATS outage with 2 gateways behind a round-robin front (issue 21,
// finding 5), and no model call repeated after recovery (finding 6): 50 peers × 20 numbered
// messages, nats-server killed (SIGKILL) mid-burst and restarted after 5 s (past the lease TTL
// and the ack wait, so partitions move); every peer's replies and session history in order, one
// model call per message. The short version (a few peers) is tests/e2e/bus-order.test.ts.
import { afterEach, describe, it } from "vitest";
import type { BusGateways } from "../support/bus-gateways.js";
import { runOutageOrder } from "../support/bus-order.js";

let g: BusGateways | undefined;
afterEach(async () => {
  await g?.stop();
  g = undefined;
});

describe("bus: order per session through a NATS outage, 2 gateways", () => {
  it("50 peers × 20 messages round robin, NATS killed after 300 and back 5 s later: in order, one model call each", async () => {
    await runOutageOrder({ peers: 50, perPeer: 20, killAfter: 300, downMs: 5_000, ratePerSec: 150, onStarted: (h) => (g = h) });
  }, 240_000);
});
