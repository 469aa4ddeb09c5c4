// A gateway with `[bus]` (and its own embedded store) killed with SIGKILL in the middle of a
// turn, then started again on the same state directory: start-up recovery closes the cut turn
// (its tools may have run, so it is not re-run) and tells the peer once; the bus redelivers the
// unacknowledged message, which is answered from the store, not run again; the message queued
// behind it in the stream is then answered normally, in order.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FileConfig } from "../../host/src/config/schema.js";
import {
  hmacSha256Hex,
  startChannelGateway,
  startFakePlatform,
  waitUntil,
  type ChannelGateway,
  type FakePlatform,
  webhookGrant,
} from "../support/channel-gateway.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { startGateway, type GatewayHandle } from "../support/gateway.js";
import { NatsServer } from "./nats-server.js";

const SECRET = "bus-gateway-crash-secret-0123456";

const CASES = [
  // Default timings: ack wait 10 s, lease TTL 25 s; the lease is taken over, so < 24 s.
  { timings: "default timings", bus: {}, boundMs: 24_000 },
  { timings: "ack_wait_ms 2000, lease_ttl_ms 6000", bus: { ack_wait_ms: 2_000, lease_ttl_ms: 6_000 }, boundMs: 15_000 },
];

describe.each(CASES)("gateway with [bus] ($timings): kill -9 during a turn, restart on the same state directory", ({ bus, boundMs }) => {
  let nats: NatsServer;
  let platform: FakePlatform;
  let emulator: Emulator;
  let gw: ChannelGateway;
  let second: GatewayHandle | undefined;

  beforeAll(async () => {
    nats = await NatsServer.start();
    platform = await startFakePlatform();
    emulator = await startEmulator();
    gw = await startChannelGateway({
      config: {
        bus: { url: nats.url, ...bus },
        channels: { webhook: { allow: ["*"] } },
        plugins: {
          // The plugin's default call budget (1 s) includes its HTTP request to the fake platform,
          // which runs in this busy test process: on a loaded CI machine a send that reached the
          // platform could time out and be sent again by the bus (at-least-once, same
          // idempotency-key), and the peer would seem told twice.
          limits: { webhook: { timeout_ms: 10_000 } },
          grants: {
            webhook: webhookGrant(`${platform.url}/inbox`),
          },
        },
      } as FileConfig,
      emulator,
      env: { TEST_WEBHOOK_SECRET: SECRET },
    });
  }, 120_000);
  afterAll(async () => {
    await second?.stop().catch(() => {});
    await gw?.stop();
    await emulator?.close();
    await platform?.close();
    await nats?.destroy();
  });

  const post = (body: object) => {
    const text = JSON.stringify(body);
    return gw.postWebhook("webhook", undefined, text, { "content-type": "application/json", "x-exoclaw-signature": `sha256=${hmacSha256Hex(SECRET, text)}` });
  };
  const repliesTo = (id: string) => platform.requests.filter((r) => r.json?.replyTo === id);
  const modelSaw = (text: string) => emulator.requests.filter((r) => JSON.stringify(r.body).includes(text));

  it("the cut turn is reported once and not re-run; the next message is answered after it", async () => {
    // Streams its answer slowly (a pause between chunks), so the kill lands inside the turn.
    expect((await post({ peer: "gina", content: "CRASH_MARK please SLOW_1500MS", messageId: "c1" })).status).toBe(200);
    expect((await post({ peer: "gina", content: "after the crash", messageId: "c2" })).status).toBe(200);
    await waitUntil(() => modelSaw("CRASH_MARK").length > 0, 60_000, "the slow turn's model call");
    await new Promise((r) => setTimeout(r, 300));
    const proc = gw.gateway.proc;
    const exited = new Promise<void>((r) => proc.once("exit", () => r()));
    proc.kill("SIGKILL");
    await exited;
    expect(repliesTo("c1")).toHaveLength(0);

    second = await startGateway(
      { ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, TEST_WEBHOOK_SECRET: SECRET, EXOCLAW_STATE_DIR: gw.stateDir },
      ["--config", gw.configFile],
    );
    const t0 = Date.now();
    // Recovery closes the started turn as interrupted and publishes the notice under the reply id.
    const notice = await platform.waitFor((r) => r.json?.replyTo === "c1", 60_000);
    expect(notice.json.content).toMatch(/^Sorry, your message could not be answered: /);
    // c1 comes back from the bus and is answered from the store; then c2, which waited behind
    // it, gets its turn. The restarted process is the same bus member (its id is kept in the
    // state directory), so it takes its partitions back at once: only the ack wait (10 s) of
    // the dead process's unacknowledged message is waited out, not the lease TTL (25 s).
    const reply = await platform.waitFor((r) => r.json?.replyTo === "c2", 90_000);
    expect(reply.json.content).toBe("You said: after the crash");
    const handOverMs = Date.now() - t0;
    const handled = second.logs.find((l) => l.msg === "bus message already handled (its turn had failed)" && l.msgId === "channel:webhook:default:c1");
    expect(handled).toBeDefined();
    await new Promise((r) => setTimeout(r, 1500));
    expect(repliesTo("c1")).toHaveLength(1);
    expect(repliesTo("c2")).toHaveLength(1);
    // The cut turn was not run again: one model call for it.
    expect(modelSaw("CRASH_MARK")).toHaveLength(1);
    const order = platform.requests.filter((r) => r.json?.peer === "gina").map((r) => r.json.replyTo);
    expect(order).toEqual(["c1", "c2"]);
    console.log(`bus crash (${JSON.stringify(bus)}): restart to c2's reply ${handOverMs} ms`);
    expect(handOverMs).toBeLessThan(boundMs);
  }, 150_000);
});
