// Issue 13 regression: inbound webhooks and outbound replies share the channel plugin's instance
// pool (`max_in_flight` 4 running, `max_queued` 64 waiting). With the write-ahead journal the
// turns of a burst end together and their replies went into the pool's queue at once, so the
// next webhooks found it full and got 503 "the plugin is busy" although nothing else was loaded.
// Replies now wait in the channel service's send gate (channels/send-gate.ts), taking at most
// `max_in_flight` places of the pool. Real gateway process on its default store (embedded, with
// the journal), the real `webhook` plugin, the provider emulator, and a platform slow to take
// replies (300 ms each), so replies pile up while the second burst of webhooks arrives.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  hmacSha256Hex,
  startChannelGateway,
  startFakePlatform,
  waitUntil,
  type ChannelGateway,
  type FakePlatform,
  webhookGrant,
} from "../support/channel-gateway.js";

const SECRET = "test-webhook-secret-0123456789";
/** Webhooks per burst: each burst alone fits the pool's queue (64), a burst plus the first burst's replies does not. */
const BURST = 48;

describe("a burst of webhooks while replies are going out (no bus, journal)", () => {
  let platform: FakePlatform;
  let gw: ChannelGateway;

  beforeAll(async () => {
    platform = await startFakePlatform(async () => {
      await new Promise((r) => setTimeout(r, 300));
      return { status: 200 };
    });
    gw = await startChannelGateway({
      config: {
        channels: { webhook: { allow: ["*"] } },
        plugins: { grants: { webhook: webhookGrant(`${platform.url}/inbox`) } },
        // Every post comes from 127.0.0.1: the per-address limits (meant for strangers) are off here.
        gateway: { webhooks: { per_address_rate: 0, per_address_in_flight: 100_000 } },
      },
      env: { TEST_WEBHOOK_SECRET: SECRET },
    });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await platform?.close();
  });

  const post = async (id: string): Promise<number> => {
    const text = JSON.stringify({ peer: `peer-${id}`, content: `hello ${id}`, messageId: id });
    const res = await fetch(`${gw.baseUrl}/webhook/webhook`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-exoclaw-signature": `sha256=${hmacSha256Hex(SECRET, text)}` },
      body: text,
    });
    await res.text();
    return res.status;
  };

  it("accepts every webhook (no 503) and sends every reply", async () => {
    const first = await Promise.all(Array.from({ length: BURST }, (_, i) => post(`a${i}`)));
    // The first burst's replies are going out (slowly) and waiting: now the second burst.
    await waitUntil(() => platform.requests.length > 0, 30_000, "the first reply at the platform");
    const second = await Promise.all(Array.from({ length: BURST }, (_, i) => post(`b${i}`)));
    const refused = [...first, ...second].filter((s) => s !== 200);
    expect(refused, `statuses other than 200: ${refused.join(", ")}`).toEqual([]);
    const ids = [...first.map((_, i) => `a${i}`), ...second.map((_, i) => `b${i}`)];
    await waitUntil(() => ids.every((id) => platform.requests.some((r) => r.json?.replyTo === id)), 90_000, "a reply to every message");
    expect(gw.gateway.logs.filter((l) => l.msg === "channel plugin busy; webhook refused for redelivery")).toEqual([]);
  }, 150_000);
});
