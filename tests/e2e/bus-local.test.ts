// No NATS configured: one gateway process, the webhook channel straight into the runtime (the
// in-process mode: the session store's journal is the durable inbound). The same ordering and
// exactly-once checks as the multi-gateway tests (bus-scale-out.test.ts), on the platform and in
// the session history.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkHistories, checkReplies, postAll, startBusGateways, waitForReplies, messageId, type BusGateways } from "../support/bus-gateways.js";

const PEERS = Array.from({ length: 50 }, (_, s) => `peer${s}`);
const PER_PEER = 10;

describe("bus: no NATS configured (in-process, one gateway)", () => {
  let g: BusGateways;
  beforeAll(async () => {
    g = await startBusGateways({ gateways: 1, nats: false });
  }, 60_000);
  afterAll(async () => {
    await g?.stop();
  });

  it(`${PEERS.length * PER_PEER} webhook messages over ${PEERS.length} sessions: each answered exactly once, in order per session`, async () => {
    const status = await g.rpc(0, "status");
    // Without [bus] the gateway reports no bus at all (not a bus that failed to connect).
    expect(status.bus ?? null).toBeNull();

    const posted = await postAll(g, PEERS, PER_PEER);
    expect([...posted.statuses.values()].every((s) => s === 200)).toBe(true);
    expect(posted.statuses.size).toBe(PEERS.length * PER_PEER);
    const ids = PEERS.flatMap((p) => Array.from({ length: PER_PEER }, (_, n) => messageId(p, n)));
    await waitForReplies(g, ids, 90_000);
    // A late duplicate would show up here.
    await new Promise((r) => setTimeout(r, 1_000));

    const check = checkReplies(g, PEERS, PER_PEER);
    expect(check.missing).toEqual([]);
    expect(check.duplicated).toEqual([]);
    expect(check.wrongContent).toEqual([]);
    expect(check.outOfOrder).toEqual([]);
    expect(g.platform.requests).toHaveLength(ids.length);
    // One model call per message: nothing was run twice.
    expect(g.emulator.requests).toHaveLength(ids.length);
    expect(await checkHistories(g, 0, PEERS, PER_PEER)).toEqual({ problems: [], reruns: [], rerunDetails: [] });
    const counters = (await g.rpc(0, "status")).channels.webhook;
    expect(counters).toMatchObject({ answered: ids.length, sendFailures: 0 });
    console.log(`bus-local: ${ids.length} messages over ${PEERS.length} sessions posted in ${posted.ms} ms, all answered once and in order`);
  }, 150_000);

  it("a redelivered webhook (same platform message id) is not run or answered again", async () => {
    const before = g.emulator.requests.length;
    const again = await postAll(g, PEERS.slice(0, 5), PER_PEER);
    expect([...again.statuses.values()].every((s) => s === 200)).toBe(true);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(g.emulator.requests.length).toBe(before);
    expect(checkReplies(g, PEERS, PER_PEER).duplicated).toEqual([]);
  }, 60_000);
});
