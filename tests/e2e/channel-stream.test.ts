// End to end: progressive replies (`stream = "edit"`) through the real gateway process, the real
// telegram channel plugin (build/plugins/telegram.wasm), the provider emulator streaming slowly
// (`SLOW_<n>MS`: one word per n ms) and the fake Telegram Bot API (editMessageText included).
// Shown: the first message goes out while the model still streams, edits respect the throttle,
// the final message equals the turn's text, and across `kill -9` the reply is finished by editing
// the same message — never a second one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, waitUntil, type ChannelGateway } from "../support/channel-gateway.js";
import { startGateway, type GatewayHandle } from "../support/gateway.js";
import { deliverTelegramUpdate, startFakeTelegram, telegramUpdate, type FakeTelegram } from "../support/platforms/telegram.mjs";

const SECRET_TOKEN = "stream-Telegram-secret_token";
const ALICE = 5151;
const BOB = 5252;
const CAROL = 5353;
const DAVE = 5454;
const ENV = { E2E_TG_BOT: "", E2E_TG_SECRET: SECRET_TOKEN };
const INTERVAL_MS = 1000;

let tg: FakeTelegram;
let gw: ChannelGateway;
let current: GatewayHandle;
const restarted: GatewayHandle[] = [];
let hook: string;

beforeAll(async () => {
  // Telegram's limit as the fake enforces it: more than 3 edits of one chat within a second get 429.
  tg = await startFakeTelegram({ rate: { edits: 3, perMs: 1000 } });
  ENV.E2E_TG_BOT = tg.token;
  gw = await startChannelGateway({
    config: {
      agents: [{ id: "main", provider: "anthropic", model: "emu-stream", tools: [] }],
      channels: {
        telegram: { allow: [String(ALICE), String(BOB), String(CAROL), String(DAVE)], stream: "edit", stream_interval_ms: INTERVAL_MS },
      },
      plugins: {
        grants: {
          telegram: {
            http: { hosts: ["127.0.0.1"], methods: ["POST"] },
            config: { base_url: tg.url },
            secrets: { TELEGRAM_BOT_TOKEN: { env: "E2E_TG_BOT" }, TELEGRAM_SECRET_TOKEN: { env: "E2E_TG_SECRET" } },
          },
        },
        limits: { telegram: { timeout_ms: 10_000 } },
      },
    },
    env: ENV,
  });
  current = gw.gateway;
  hook = `${gw.baseUrl}/webhook/telegram`;
}, 60_000);

afterAll(async () => {
  for (const r of restarted) await r.stop();
  await gw?.stop();
  await tg?.close();
});

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");
const messagesTo = (chat: number) => tg.sent.filter((s) => s.chat_id === chat);

/** Kills the running gateway with SIGKILL and starts it again on the same state directory and config. */
async function killAndRestart(): Promise<void> {
  const exited = new Promise((r) => current.proc.once("exit", r));
  current.proc.kill("SIGKILL");
  await exited;
  current = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: gw.emulator.url, ...ENV, EXOCLAW_STATE_DIR: gw.stateDir }, [
    "--config",
    gw.configFile,
  ]);
  restarted.push(current);
  hook = `http://127.0.0.1:${current.port}/webhook/telegram`;
}

describe("stream = edit on Telegram", () => {
  it("sends the first message while the model streams, edits it at most once per interval, and ends with the turn's exact text", async () => {
    const text = `stream tg-s1 SLOW_250MS ${words(28)}`;
    expect((await deliverTelegramUpdate(hook, telegramUpdate({ chatId: ALICE, text, messageId: 11 }), SECRET_TOKEN)).status).toBe(200);
    const expected = `You said: ${text}`;
    const [first] = await waitUntil(() => (messagesTo(ALICE).length > 0 ? messagesTo(ALICE) : null), 60_000, "the first streamed message");
    const firstText = first!.text;
    // Early: the message is out while the model is still streaming (its text is a prefix).
    expect(first!.text.length).toBeLessThan(expected.length);
    expect(expected.startsWith(first!.text)).toBe(true);
    expect(first!.reply_parameters).toEqual({ message_id: 11, allow_sending_without_reply: true });
    await waitUntil(() => first!.text === expected, 60_000, "the final edit");
    await new Promise((r) => setTimeout(r, 1500));
    // One message, whose final text is the turn's text; edited several times on the way.
    expect(messagesTo(ALICE)).toHaveLength(1);
    expect(messagesTo(ALICE)[0]!.text).toBe(expected);
    const edits = tg.editAttempts.filter((e) => e.chat_id === ALICE);
    expect(edits.length).toBeGreaterThanOrEqual(2);
    // The throttle: calls (the final edit included) start at least INTERVAL_MS apart, so over the
    // span from the first to the last edit there are at most span / interval + 1 edits (+1 for
    // arrival jitter on a loaded machine), and the platform never answered 429.
    const sentAt = tg.calls.findIndex((c) => c.method === "sendMessage" && c.json.chat_id === ALICE);
    expect(sentAt).toBeGreaterThanOrEqual(0);
    const span = edits.at(-1)!.at - edits[0]!.at;
    expect(edits.length).toBeLessThanOrEqual(Math.floor(span / INTERVAL_MS) + 2);
    expect(edits.filter((e) => e.status === 429)).toEqual([]);
    console.log(
      `stream=edit telegram: ~31 text deltas over ${span} ms -> 1 sendMessage + ${edits.length} editMessageText (interval ${INTERVAL_MS} ms), first message ${firstText.length} of ${expected.length} chars`,
    );
    // The model's text came in ~29 deltas; far fewer edits than deltas.
    expect(edits.length).toBeLessThan(20);
  }, 120_000);

  it("a streamed message deleted on the platform: the final text goes out once as a new message", async () => {
    const text = `stream tg-s4 SLOW_200MS ${words(16)}`;
    const expected = `You said: ${text}`;
    expect((await deliverTelegramUpdate(hook, telegramUpdate({ chatId: DAVE, text, messageId: 14 }), SECRET_TOKEN)).status).toBe(200);
    await waitUntil(() => tg.edits.some((e) => e.chat_id === DAVE), 60_000, "a first edit for Dave");
    tg.deleteMessage(messagesTo(DAVE)[0]!.message_id);
    await waitUntil(() => messagesTo(DAVE).length === 2, 60_000, "the reply sent anew");
    await new Promise((r) => setTimeout(r, 1500));
    expect(messagesTo(DAVE)).toHaveLength(2);
    expect(messagesTo(DAVE)[0]!.deleted).toBe(true);
    expect(messagesTo(DAVE)[1]!.text).toBe(expected);
  }, 120_000);

  it("kill -9 after the turn ended, while the final edit is failing: after the restart the same message gets the final text, no second message", async () => {
    const text = `stream tg-s2 SLOW_150MS ${words(16)}`;
    const expected = `You said: ${text}`;
    expect((await deliverTelegramUpdate(hook, telegramUpdate({ chatId: BOB, text, messageId: 12 }), SECRET_TOKEN)).status).toBe(200);
    // Once the message exists and one edit went through (its id is on disk), the platform's edits fail.
    await waitUntil(() => tg.edits.some((e) => e.chat_id === BOB), 60_000, "a first edit for Bob");
    tg.failEdits(true);
    // The turn ends; its final edit fails (500) and is being retried by the outbox.
    await waitUntil(() => current.logs.some((e) => e.msg === "channel send failed; retrying" && e.peer === String(BOB)), 60_000, "a failed final edit");
    expect(messagesTo(BOB)[0]!.text).not.toBe(expected);
    await killAndRestart();
    tg.failEdits(false);
    await waitUntil(() => messagesTo(BOB)[0]?.text === expected, 60_000, "the final edit after the restart");
    await new Promise((r) => setTimeout(r, 1500));
    expect(messagesTo(BOB)).toHaveLength(1);
    expect(messagesTo(BOB)[0]!.text).toBe(expected);
  }, 180_000);

  it("kill -9 mid-stream: after the restart the streamed message itself carries the turn's outcome, no second message", async () => {
    const text = `stream tg-s3 SLOW_400MS ${words(40)}`;
    expect((await deliverTelegramUpdate(hook, telegramUpdate({ chatId: CAROL, text, messageId: 13 }), SECRET_TOKEN)).status).toBe(200);
    await waitUntil(() => tg.edits.some((e) => e.chat_id === CAROL), 60_000, "a first edit for Carol");
    const partial = messagesTo(CAROL)[0]!.text;
    expect(`You said: ${text}`.startsWith(partial)).toBe(true);
    await killAndRestart();
    // Recovery does not re-run a turn that had started (docs/reliability.md): its outcome is a
    // failure notice, which the owed reply delivers by editing the streamed message.
    await waitUntil(() => messagesTo(CAROL)[0]?.text !== partial, 60_000, "the streamed message's final edit after the restart");
    await new Promise((r) => setTimeout(r, 1500));
    expect(messagesTo(CAROL)).toHaveLength(1);
    expect(messagesTo(CAROL)[0]!.text).toMatch(/^Sorry, your message could not be answered: /);
  }, 180_000);
});
