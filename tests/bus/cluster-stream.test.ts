// Progressive replies, typing and inbound images when the turn runs on another gateway of the
// bus (issue 18; docs/bus.md, "Progressive replies and typing across gateways" and "Images
// across gateways"): 2 gateway processes on one real nats-server, the real telegram channel
// plugin, the fake Telegram Bot API and the provider emulator streaming slowly. Every update is
// delivered to gateway 0's webhook; the chats are picked so that their inbound partition is held
// by gateway 1, which runs the turn.
// - the typing indicator is sent, the first message goes out while the model streams, edits
//   respect the throttle, the final text is the turn's and there is one message;
// - kill -9 of the gateway running the turn mid-stream: the other gateway runs it again and
//   edits the same message (its id is in NATS KV), no second message;
// - an image (inline, and one over the 512 KiB inline cap, through the NATS object store)
//   reaches the emulator as an image block.
// Nothing is timed.
import { createHash } from "node:crypto";
import { jetstream } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inboundSubject, partitionOf } from "../../host/src/bus/subjects.js";
import { heldPartitions, startBusGateways, waitForPartitionsSpread, type BusGateways } from "../support/bus-gateways.js";
import { waitUntil } from "../support/channel-gateway.js";
import { deliverTelegramUpdate, startFakeTelegram, telegramUpdate, type FakeTelegram } from "../support/platforms/telegram.mjs";

const PARTITIONS = 4;
const SECRET_TOKEN = "bus-stream-Telegram-secret";
const INTERVAL_MS = 1000;
const ENV = { E2E_TG_BOT: "", E2E_TG_SECRET: SECRET_TOKEN };

let tg: FakeTelegram;
let g: BusGateways;
/** Chats whose inbound partition gateway 1 holds (their turns run there). */
let chats: number[] = [];

beforeAll(async () => {
  tg = await startFakeTelegram({ rate: { edits: 3, perMs: 1000 } });
  ENV.E2E_TG_BOT = tg.token;
  const allow = Array.from({ length: 40 }, (_, i) => String(7000 + i));
  g = await startBusGateways({
    gateways: 2,
    bus: { partitions: PARTITIONS, ack_wait_ms: 2_000, lease_ttl_ms: 5_000 },
    env: ENV,
    config: {
      agents: [{ id: "main", provider: "anthropic", model: "emu-bus-stream", tools: [] }],
      channels: { telegram: { allow, stream: "edit", stream_interval_ms: INTERVAL_MS } },
      plugins: {
        grants: {
          telegram: {
            http: { hosts: ["127.0.0.1"], methods: ["POST", "GET"] },
            config: { base_url: tg.url },
            secrets: { TELEGRAM_BOT_TOKEN: { env: "E2E_TG_BOT" }, TELEGRAM_SECRET_TOKEN: { env: "E2E_TG_SECRET" } },
          },
        },
        limits: { telegram: { timeout_ms: 10_000 } },
      },
    },
  });
  await waitForPartitionsSpread(g, [0, 1], PARTITIONS);
  const held1 = await heldPartitions(g, 1);
  chats = allow
    .map(Number)
    .filter((c) => held1.includes(partitionOf(inboundSubject({ channel: "telegram", account: "default", peer: String(c) }), PARTITIONS)));
  expect(chats.length).toBeGreaterThanOrEqual(4);
}, 240_000);

afterAll(async () => {
  await g?.stop();
  await tg?.close();
});

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");
const messagesTo = (chat: number) => tg.sent.filter((s) => Number(s.chat_id) === chat);
const deliver = (u: unknown) => deliverTelegramUpdate(`${g.gateways[0]!.baseUrl}/webhook/telegram`, u, SECRET_TOKEN);
const ranOn = (i: number, chat: number) => g.gateways[i]!.gateway.logs.some((e) => e.peer === String(chat) && e.msg === "bus message handled");

describe("stream = edit and typing when the turn runs on another gateway", () => {
  it("typing is shown, the first message goes out while the model streams, edits respect the throttle, one message with the turn's text", async () => {
    const chat = chats[0]!;
    const text = `stream bus-s1 SLOW_250MS ${words(28)}`;
    const expected = `You said: ${text}`;
    expect((await deliver(telegramUpdate({ chatId: chat, text, messageId: 21 }))).status).toBe(200);
    const [first] = await waitUntil(() => (messagesTo(chat).length > 0 ? messagesTo(chat) : null), 60_000, "the first streamed message");
    expect(first!.text.length).toBeLessThan(expected.length);
    expect(expected.startsWith(first!.text)).toBe(true);
    await waitUntil(() => first!.text === expected, 60_000, "the final edit");
    await waitUntil(() => (ranOn(1, chat) ? true : null), 30_000, "the turn's end on gateway 1");
    await new Promise((r) => setTimeout(r, 1500));
    expect(messagesTo(chat)).toHaveLength(1);
    expect(messagesTo(chat)[0]!.text).toBe(expected);
    // Run by gateway 1 (it holds the chat's partition), typing included.
    expect(ranOn(1, chat)).toBe(true);
    expect(ranOn(0, chat)).toBe(false);
    expect(tg.typing.filter((t) => Number(t.chat_id) === chat && t.action === "typing").length).toBeGreaterThanOrEqual(1);
    const edits = tg.editAttempts.filter((e) => Number(e.chat_id) === chat);
    expect(edits.length).toBeGreaterThanOrEqual(2);
    const span = edits.at(-1)!.at - edits[0]!.at;
    expect(edits.length).toBeLessThanOrEqual(Math.floor(span / INTERVAL_MS) + 2);
    expect(edits.filter((e) => e.status === 429)).toEqual([]);
    console.log(`stream=edit over the bus: 1 sendMessage + ${edits.length} editMessageText over ${span} ms (interval ${INTERVAL_MS} ms)`);
  }, 120_000);

  it("an image reaches the model on the consuming gateway: inline, and over the inline cap through the NATS object store", async () => {
    for (const [i, size] of [
      [0, 2_000],
      [1, 700 * 1024],
    ] as const) {
      const chat = chats[1 + i]!;
      const marker = `bus-img-${size}`;
      const image = png(size);
      const b64 = Buffer.from(image).toString("base64");
      const photo = [{ file_id: tg.addFile(image), file_unique_id: `u${marker}`, width: 4, height: 4, file_size: size }];
      expect((await deliver(telegramUpdate({ chatId: chat, caption: marker, extra: { photo } }))).status).toBe(200);
      await waitUntil(() => (messagesTo(chat).some((s) => s.text.includes(marker)) ? true : null), 60_000, `the reply to ${marker}`);
      const req = g.emulator.requests.find((r) => JSON.stringify(r.body).includes(marker));
      const user = [...req!.body.messages].reverse().find((m: { role: string }) => m.role === "user");
      expect(user.content).toContainEqual({ type: "image", source: { type: "base64", media_type: "image/png", data: b64 } });
      await waitUntil(() => (ranOn(1, chat) ? true : null), 30_000, "the turn's end on gateway 1");
      expect(ranOn(0, chat)).toBe(false);
      // The large one went through the object store (named by its SHA-256); the small one inline.
      const name = `sha256-${createHash("sha256").update(image).digest("hex")}`;
      expect((await objectInfo(name))?.size ?? null).toBe(size > 512 * 1024 ? size : null);
    }
  }, 180_000);

  it("kill -9 of the gateway running the turn mid-stream: the other gateway finishes it by editing the same message", async () => {
    const chat = chats[3]!;
    const text = `stream bus-s2 SLOW_400MS ${words(40)}`;
    expect((await deliver(telegramUpdate({ chatId: chat, text, messageId: 22 }))).status).toBe(200);
    await waitUntil(() => tg.edits.some((e) => Number(e.chat_id) === chat), 60_000, "a first edit");
    const partial = messagesTo(chat)[0]!.text;
    await g.kill(1);
    // Gateway 0 takes the partition over and runs the message again (docs/bus.md): its outcome
    // goes to the streamed message as an edit.
    await waitUntil(() => (ranOn(0, chat) ? true : null), 90_000, "the turn re-run on gateway 0");
    await waitUntil(() => (messagesTo(chat)[0]?.text !== partial && /You said|Sorry/.test(messagesTo(chat)[0]!.text) ? true : null), 90_000, "the final edit");
    await new Promise((r) => setTimeout(r, 2000));
    expect(messagesTo(chat)).toHaveLength(1);
    expect(messagesTo(chat)[0]!.text).toBe(`You said: ${text}`);
  }, 240_000);
});

/** The info of object `name` in the media bucket (exoclaw_media), or null. */
async function objectInfo(name: string) {
  const nc = await connect({ servers: g.nats!.url });
  try {
    const os = await new Objm(jetstream(nc)).open("exoclaw_media").catch((err: Error) => {
      if (/not found/.test(err.message)) return null; // no large image stored yet
      throw err;
    });
    return os === null ? null : await os.info(name);
  } finally {
    await nc.close();
  }
}

/** PNG signature then filler bytes: `n` bytes the host sniffs as image/png. */
function png(n: number): Uint8Array {
  const b = new Uint8Array(n);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  for (let i = 8; i < n; i++) b[i] = i % 251;
  return b;
}
