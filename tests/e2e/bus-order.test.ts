// The short version of tests/e2e/bus-order.fault.test.ts (issue 21, findings 5 and 6), for
// `npm test`: 2 gateway processes behind a round-robin front, a few peers, one NATS outage
// (SIGKILL, back ~2.5 s later) while their numbered messages arrive. Each peer's replies and
// session history stay in order and every message reaches the model once:
// - `[bus] outage = "spool"` (default): both gateways answer 200 and spool; their spools drain
//   independently, and the consumers' reorder window puts the messages back in intake order;
// - `[bus] outage = "refuse"`: the gateways answer 503 while NATS is down, the front (like a
//   platform) posts again until one accepts: nothing is spooled, order comes from the platform.
import { afterEach, describe, expect, it } from "vitest";
import type { BusGateways } from "../support/bus-gateways.js";
import { runOutageOrder } from "../support/bus-order.js";

let g: BusGateways | undefined;
afterEach(async () => {
  await g?.stop();
  g = undefined;
});

describe("bus: order per session through a NATS outage, 2 gateways (short)", () => {
  it('outage = "spool": 6 peers × 8 messages, NATS killed after 12: in order, one model call each', async () => {
    const r = await runOutageOrder({ peers: 6, perPeer: 8, killAfter: 12, downMs: 2_500, ratePerSec: 12, onStarted: (h) => (g = h) });
    expect(r.failovers).toBe(0); // every post answered 200 at once (spooled)
  }, 120_000);

  it('outage = "refuse": the same, answered 503 while NATS is down and posted again', async () => {
    const r = await runOutageOrder({
      peers: 6,
      perPeer: 8,
      killAfter: 12,
      downMs: 2_500,
      ratePerSec: 12,
      bus: { outage: "refuse" },
      onStarted: (h) => (g = h),
    });
    expect(r.failovers).toBeGreaterThan(0);
  }, 120_000);
});
