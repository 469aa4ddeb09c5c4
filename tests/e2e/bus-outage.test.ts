// A NATS outage under a gateway process: one gateway on the bus, its NATS URL from
// `EXOCLAW_NATS_URL` and `[bus] partitions` from the file (the scale-out test covers `[bus] url`),
// with its own embedded session store so that only the bus depends on the server; the webhook
// channel and a fake platform. nats-server is stopped while 1,000 webhook messages (50 sessions)
// are posted: the webhook keeps answering 200 (the messages go to the disk spool), and after a
// restart every message is answered exactly once, in order per session.
import { afterEach, describe, expect, it } from "vitest";
import {
  checkHistories,
  checkReplies,
  messageId,
  startBusGateways,
  waitForPartitionsSpread,
  waitForReplies,
  type BusGateways,
} from "../support/bus-gateways.js";

const PEERS = Array.from({ length: 50 }, (_, s) => `peer${s}`);
const PER_PEER = 20;
const TOTAL = PEERS.length * PER_PEER;
const PARTITIONS = 8;

let g: BusGateways | undefined;
afterEach(async () => {
  await g?.stop();
  g = undefined;
});

describe("bus: NATS outage under a gateway", () => {
  it(`stop nats-server while ${TOTAL} webhook messages are posted, restart it: all answered exactly once, in order per session`, async () => {
    const h = (g = await startBusGateways({ gateways: 1, nats: true, natsStore: false, natsUrlFrom: "env", bus: { partitions: PARTITIONS } }));
    expect(h.gateways[0]!.gateway.ready.bus).toMatchObject({ kind: "nats", connected: true });
    await waitForPartitionsSpread(h, [0], PARTITIONS);
    const nats = h.nats!;

    // Rounds: message n of every peer, concurrently; each round after the previous one's answers,
    // so each peer's order is defined by the webhook answers.
    const statuses: number[] = [];
    let stoppedAt = 0;
    let restartedAt = 0;
    let spooledSeen = 0;
    const t0 = Date.now();
    for (let n = 0; n < PER_PEER; n++) {
      if (n === 6) {
        await nats.stop();
        stoppedAt = Date.now();
      }
      if (n === 10) {
        const bus = (await h.rpc(0, "status")).bus;
        expect(bus).toMatchObject({ kind: "nats", connected: false });
        spooledSeen = bus.spooled;
        // Stay down a while: the client's reconnect attempts fail, leases lapse.
        await new Promise((r) => setTimeout(r, 3_000));
      }
      if (n === 14) {
        await nats.restart();
        restartedAt = Date.now();
      }
      const answers = await Promise.all(PEERS.map((peer) => h.post(0, { peer, content: String(n), messageId: messageId(peer, n) })));
      statuses.push(...answers.map((a) => a.status));
    }
    const postedMs = Date.now() - t0;
    // The webhook answered 200 all along, also while NATS was down: the messages were durable in the spool.
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(statuses).toHaveLength(TOTAL);
    // Rounds 6..9 were posted while the server was down and not handled yet: at least 4 × 50 spooled.
    expect(spooledSeen).toBeGreaterThanOrEqual(4 * PEERS.length);

    const ids = PEERS.flatMap((p) => Array.from({ length: PER_PEER }, (_, n) => messageId(p, n)));
    try {
      await waitForReplies(h, ids, 120_000);
    } catch (err) {
      console.log(JSON.stringify(h.gateways[0]!.gateway.logs.filter((l) => Number(l.level) >= 40).slice(0, 30), null, 1));
      throw err;
    }
    const doneMs = Date.now() - t0;
    await new Promise((r) => setTimeout(r, 1_500)); // a late duplicate would show up here

    const check = checkReplies(h, PEERS, PER_PEER);
    expect(check.missing).toEqual([]);
    expect(check.duplicated).toEqual([]);
    expect(check.wrongContent).toEqual([]);
    expect(check.outOfOrder).toEqual([]);
    expect(h.platform.requests).toHaveLength(TOTAL);
    expect(h.emulator.requests).toHaveLength(TOTAL);
    expect(await checkHistories(h, 0, PEERS, PER_PEER)).toEqual({ problems: [], reruns: [], rerunDetails: [] });
    const bus = (await h.rpc(0, "status")).bus;
    expect(bus).toMatchObject({ connected: true, spooled: 0 });
    console.log(
      `bus outage via the gateway: ${TOTAL} messages over ${PEERS.length} sessions; nats-server down ${restartedAt - stoppedAt} ms; ` +
        `${spooledSeen} spooled when checked mid-outage; posted in ${postedMs} ms; all answered once and in order ${doneMs} ms after the first post`,
    );
  }, 180_000);
});
