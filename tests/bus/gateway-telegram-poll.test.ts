// A polled channel on the bus: the real gateway with `[bus]`, the real telegram plugin polling the
// fake Bot API's getUpdates; polled messages are published to JetStream like webhooks (same
// message ids, allowlist at the door) and answered once with sendMessage.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FileConfig } from "../../host/src/config/schema.js";
import { startChannelGateway, waitUntil, type ChannelGateway } from "../support/channel-gateway.js";
import { startFakeTelegram, telegramUpdate, type FakeTelegram } from "../support/platforms/telegram.mjs";
import { NatsServer } from "./nats-server.js";

const ALICE = 4242;
const MALLORY = 6666;

describe("gateway with [bus]: telegram polling", () => {
  let nats: NatsServer;
  let tg: FakeTelegram;
  let gw: ChannelGateway;

  beforeAll(async () => {
    nats = await NatsServer.start();
    tg = await startFakeTelegram();
    gw = await startChannelGateway({
      config: {
        bus: { url: nats.url },
        channels: { tgpoll: { plugin: "telegram", allow: [String(ALICE)], poll: { interval_ms: 100, accounts: ["default"] } } },
        plugins: {
          grants: {
            telegram: {
              http: { hosts: ["127.0.0.1"], methods: ["POST"] },
              config: { base_url: tg.url },
              secrets: { TELEGRAM_BOT_TOKEN: { env: "BUS_TG_BOT" }, TELEGRAM_SECRET_TOKEN: { env: "BUS_TG_SECRET" } },
            },
          },
          limits: { telegram: { timeout_ms: 10_000 } },
        },
      } as FileConfig,
      env: { BUS_TG_BOT: tg.token, BUS_TG_SECRET: "bus-Telegram-secret_token" },
    });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await tg?.close();
    await nats?.destroy();
  });

  const sentWith = (marker: string) => tg.sent.filter((s) => s.text.includes(marker));

  it("polled messages go through the bus and are answered once; a stranger never reaches the bus", async () => {
    tg.enqueue(telegramUpdate({ chatId: ALICE, text: "bus poll p-1", messageId: 90, updateId: 7000 }));
    tg.enqueue(telegramUpdate({ chatId: MALLORY, text: "bus poll stranger p-2", messageId: 91, updateId: 7001 }));
    tg.enqueue(telegramUpdate({ chatId: ALICE, text: "bus poll p-3", messageId: 92, updateId: 7002 }));
    await waitUntil(() => sentWith("p-1").length > 0 && sentWith("p-3").length > 0, 30_000, "replies to p-1 and p-3");
    expect(sentWith("p-1")[0]).toMatchObject({ chat_id: ALICE, text: "You said: bus poll p-1" });
    const published = gw.gateway.logs.filter((l) => l.msg === "channel message published to the bus");
    expect(published.map((l) => [l.source, l.peer, l.storedIn])).toEqual([
      ["poll", String(ALICE), "stream"],
      ["poll", String(ALICE), "stream"],
    ]);
    expect(published.every((l) => String(l.msgId).startsWith(`channel:tgpoll:default:`))).toBe(true);
    await new Promise((r) => setTimeout(r, 1000));
    expect(sentWith("p-1")).toHaveLength(1);
    expect(sentWith("p-3")).toHaveLength(1);
    expect(sentWith("stranger")).toHaveLength(0);
    expect(gw.emulator.requests.filter((r) => JSON.stringify(r.body).includes("stranger"))).toHaveLength(0);
  }, 60_000);
});
