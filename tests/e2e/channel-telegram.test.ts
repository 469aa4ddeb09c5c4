// End to end: the real gateway process with the telegram channel plugin (build/plugins/
// telegram.wasm, approved with the CLI), the provider emulator as the model, and the fake
// Telegram Bot API (tests/support/platforms/telegram.mjs) as the platform. Two channels use the
// plugin: `telegram` receives webhooks as Telegram sends them (JSON Update, secret-token
// header); `tgpoll` polls getUpdates. Replies must arrive at the fake's sendMessage.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, waitUntil, type ChannelGateway } from "../support/channel-gateway.js";
import { startGateway, type GatewayHandle } from "../support/gateway.js";
import { deliverTelegramUpdate, startFakeTelegram, telegramUpdate, type FakeTelegram } from "../support/platforms/telegram.mjs";

const SECRET_TOKEN = "e2e-Telegram-secret_token";
const ALICE = 4242; // allowed private chat
const GROUP = -1001234567890; // allowed supergroup
const MALLORY = 6666; // not allowed
const ENV = { E2E_TG_BOT: "", E2E_TG_SECRET: SECRET_TOKEN };

let tg: FakeTelegram;
let gw: ChannelGateway;
/** The gateway after the restart (same state directory and config). */
let restarted: GatewayHandle | null = null;
let hook: string;

beforeAll(async () => {
  tg = await startFakeTelegram();
  ENV.E2E_TG_BOT = tg.token;
  gw = await startChannelGateway({
    config: {
      agents: [{ id: "main", provider: "anthropic", model: "emu-telegram", tools: [] }],
      channels: {
        telegram: { allow: [String(ALICE), String(GROUP)] },
        tgpoll: { plugin: "telegram", allow: [String(ALICE)], poll: { interval_ms: 100, accounts: ["default"] } },
      },
      plugins: {
        grants: {
          telegram: {
            http: { hosts: ["127.0.0.1"], methods: ["POST"] },
            config: { base_url: tg.url },
            secrets: { TELEGRAM_BOT_TOKEN: { env: "E2E_TG_BOT" }, TELEGRAM_SECRET_TOKEN: { env: "E2E_TG_SECRET" } },
          },
        },
        // Generous for a loaded 2-core machine; the plugin's HTTP calls go to 127.0.0.1.
        limits: { telegram: { timeout_ms: 10_000 } },
      },
    },
    env: ENV,
  });
  hook = `${gw.baseUrl}/webhook/telegram`;
}, 60_000);

afterAll(async () => {
  await restarted?.stop();
  await gw?.stop();
  await tg?.close();
});

/** Model requests whose body mentions `marker`. */
const modelRequestsWith = (marker: string) => gw.emulator.requests.filter((r) => JSON.stringify(r.body).includes(marker));
const sentWith = (marker: string) => tg.sent.filter((s) => s.text.includes(marker));

describe("telegram webhook through the gateway", () => {
  it("an allowed private chat is answered with sendMessage in the same chat, replying to the message", async () => {
    const update = telegramUpdate({ chatId: ALICE, text: "hello tg-1", messageId: 71 });
    const r = await deliverTelegramUpdate(hook, update, SECRET_TOKEN);
    expect(r.status).toBe(200);
    const [reply] = await waitUntil(() => (sentWith("tg-1").length > 0 ? sentWith("tg-1") : null), 30_000, "the reply to tg-1");
    expect(reply).toMatchObject({ chat_id: ALICE, text: "You said: hello tg-1" });
    expect(reply!.reply_parameters).toEqual({ message_id: 71, allow_sending_without_reply: true });
    const call = tg.calls.find((c) => c.method === "sendMessage" && c.json.text === reply!.text)!;
    expect(call.token).toBe(tg.token);
    const model = modelRequestsWith("hello tg-1");
    expect(model).toHaveLength(1);
    expect(model[0]!.body.model).toBe("emu-telegram");
  });

  it("an allowed supergroup is answered in the message's forum topic", async () => {
    const update = telegramUpdate({ chatId: GROUP, chatType: "supergroup", fromId: 99, text: "topic tg-2", messageId: 72, threadId: 321 });
    expect((await deliverTelegramUpdate(hook, update, SECRET_TOKEN)).status).toBe(200);
    const [reply] = await waitUntil(() => (sentWith("tg-2").length > 0 ? sentWith("tg-2") : null), 30_000, "the reply to tg-2");
    // In a group the model sees the host-written sender line first (docs/channels.md, Groups); the emulator echoes it.
    expect(reply).toMatchObject({
      chat_id: GROUP,
      message_thread_id: 321,
      text: expect.stringMatching(/^You said: \[exoclaw sender\] id="99" name="Test" .*\ntopic tg-2$/s),
    });
  });

  it("a stranger gets nothing: 200 to Telegram, no model request, no sendMessage", async () => {
    const before = tg.sent.length;
    const r = await deliverTelegramUpdate(hook, telegramUpdate({ chatId: MALLORY, text: "stranger tg-3" }), SECRET_TOKEN);
    // Telegram redelivers anything but a 2xx; a dropped stranger is still acknowledged.
    expect(r.status).toBe(200);
    await gw.waitForLog((e) => e.channel === "telegram" && e.peer === String(MALLORY) && /allowlist/.test(String(e.msg)));
    // The drop is decided before the HTTP answer; a grace period shows nothing follows it.
    await new Promise((res) => setTimeout(res, 1500));
    expect(modelRequestsWith("stranger tg-3")).toHaveLength(0);
    expect(tg.sent.length).toBe(before);
  });

  it("a missing or wrong secret token gets 401 and nothing else happens", async () => {
    const sentBefore = tg.sent.length;
    // The polling channel keeps calling getUpdates meanwhile; every other Bot API call counts.
    const botCalls = () => tg.calls.filter((c) => c.method !== "getUpdates").length;
    const callsBefore = botCalls();
    const update = telegramUpdate({ chatId: ALICE, text: "forged tg-4" });
    for (const token of [undefined, "guess", `${SECRET_TOKEN}x`]) {
      const r = await deliverTelegramUpdate(hook, update, token);
      expect(r.status, String(token)).toBe(401);
    }
    await new Promise((res) => setTimeout(res, 1500));
    expect(modelRequestsWith("forged tg-4")).toHaveLength(0);
    expect(tg.sent.length).toBe(sentBefore);
    expect(botCalls()).toBe(callsBefore);
  });

  it("a redelivered update (same update and message id) is answered once", async () => {
    const update = telegramUpdate({ chatId: ALICE, text: "again tg-5", messageId: 75 });
    expect((await deliverTelegramUpdate(hook, update, SECRET_TOKEN)).status).toBe(200);
    await waitUntil(() => sentWith("tg-5").length > 0, 30_000, "the reply to tg-5");
    expect((await deliverTelegramUpdate(hook, update, SECRET_TOKEN)).status).toBe(200);
    await new Promise((res) => setTimeout(res, 1500));
    expect(sentWith("tg-5")).toHaveLength(1);
    expect(modelRequestsWith("again tg-5")).toHaveLength(1);
  });
});

describe("telegram typing indicator", () => {
  it("sendChatAction typing is sent while the turn runs, before the reply", async () => {
    const update = telegramUpdate({ chatId: ALICE, text: "typing tg-10 SLOW_1200MS", messageId: 77 });
    expect((await deliverTelegramUpdate(hook, update, SECRET_TOKEN)).status).toBe(200);
    await waitUntil(() => sentWith("tg-10").length > 0, 60_000, "the reply to tg-10");
    const replyAt = Date.now();
    const typed = tg.typing.filter((t) => t.chat_id === ALICE);
    expect(typed.length).toBeGreaterThanOrEqual(1);
    expect(typed[0]).toMatchObject({ action: "typing" });
    expect(typed[0]!.at).toBeLessThan(replyAt);
  }, 90_000);
});

describe("telegram polling through the gateway", () => {
  it("getUpdates messages are answered; strangers are not; the cursor survives a restart (nothing answered twice)", async () => {
    tg.enqueue(telegramUpdate({ chatId: ALICE, text: "poll tg-6", messageId: 90, updateId: 5000 }));
    tg.enqueue(telegramUpdate({ chatId: MALLORY, text: "poll stranger tg-7", messageId: 91, updateId: 5001 }));
    tg.enqueue(telegramUpdate({ chatId: ALICE, text: "poll tg-8", messageId: 92, updateId: 5002 }));
    await waitUntil(() => sentWith("tg-6").length > 0 && sentWith("tg-8").length > 0, 30_000, "replies to tg-6 and tg-8");
    expect(sentWith("tg-6")[0]).toMatchObject({ chat_id: ALICE, text: "You said: poll tg-6" });
    // The cursor moved past all three (the stranger's included) and was confirmed to Telegram.
    await waitUntil(() => tg.calls.some((c) => c.method === "getUpdates" && c.json.offset === 5003), 30_000, "a getUpdates with offset 5003");
    expect(tg.pending()).toEqual([]);

    await gw.gateway.stop();
    const callsAtStop = tg.calls.length;
    tg.enqueue(telegramUpdate({ chatId: ALICE, text: "after restart tg-9", messageId: 93, updateId: 5003 }));
    restarted = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: gw.emulator.url, ...ENV, EXOCLAW_STATE_DIR: gw.stateDir }, [
      "--config",
      gw.configFile,
    ]);
    await waitUntil(() => sentWith("tg-9").length > 0, 30_000, "the reply to tg-9 after the restart");
    // The first poll after the restart starts from the persisted cursor.
    const firstPoll = tg.calls.slice(callsAtStop).find((c) => c.method === "getUpdates");
    expect(firstPoll?.json.offset).toBe(5003);
    await new Promise((res) => setTimeout(res, 1000));
    expect(sentWith("tg-6")).toHaveLength(1);
    expect(sentWith("tg-8")).toHaveLength(1);
    expect(sentWith("tg-9")).toHaveLength(1);
    expect(sentWith("tg-7")).toHaveLength(0);
    expect(modelRequestsWith("poll stranger tg-7")).toHaveLength(0);
  });
});
