// The `telegram` channel plugin (plugins/channels/telegram), compiled from source and run in a
// real sandbox pool against the fake Bot API (tests/support/platforms/telegram.mjs): Update ->
// message mapping, the secret-token check, sendMessage and getUpdates polling with a cursor.
import { Packr, Unpackr } from "msgpackr";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { EditResult, InboundMessage, OutboundMessage, ParseResult, PollResult, SendReceipt, WebhookRequest } from "../../../host/src/channels/types.js";
import { DEFAULT_LIMITS, type EffectiveGrant } from "../../../host/src/plugins/capabilities.js";
import { createHostServices, createSandboxPool, type CallOutcome, type SandboxPool } from "../../../host/src/plugins/sandbox/index.js";
import { MAX_SEND_MAX_BYTES } from "../../../host/src/config/index.js";
import { buildPlugin } from "../../../scripts/build-plugins.mjs";
import { captureLogger, tempDir } from "../../plugins/sandbox/support.js";
import { startFakeTelegram, telegramUpdate, type FakeTelegram } from "../../support/platforms/telegram.mjs";

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const SECRET_TOKEN = "s3cret-T0ken_xyz";

let wasm: Uint8Array;
let tg: FakeTelegram;
let p: SandboxPool;
const pools: SandboxPool[] = [];

async function pool(grant: EffectiveGrant): Promise<SandboxPool> {
  const created = createSandboxPool({
    name: "telegram",
    wasm,
    grant,
    limits: { ...DEFAULT_LIMITS, timeoutMs: 5_000 },
    stateDir: await tempDir("exoclaw-state-"),
    services: createHostServices(),
    logger: captureLogger(),
  });
  pools.push(created);
  return created;
}

const grant = (): EffectiveGrant => ({
  http: { hosts: ["127.0.0.1"], methods: ["POST"] },
  secrets: { TELEGRAM_BOT_TOKEN: tg.token, TELEGRAM_SECRET_TOKEN: SECRET_TOKEN },
  config: { base_url: tg.url },
});

beforeAll(async () => {
  ({ wasm } = await buildPlugin("plugins/channels/telegram"));
  tg = await startFakeTelegram();
  p = await pool(grant());
}, 60_000);

afterAll(async () => {
  await Promise.all(pools.map((x) => x.close()));
  await tg?.close();
});

beforeEach(() => tg.reset());

function out<T>(r: CallOutcome): T {
  if (!r.ok) throw new Error(`call failed: ${r.kind}: ${r.message}`);
  return unpackr.unpack(r.output) as T;
}

/** `token` null = no secret-token header. */
function webhook(update: unknown, token: string | null = SECRET_TOKEN, over: Partial<WebhookRequest> = {}): WebhookRequest {
  return {
    channel: "telegram",
    account: "default",
    method: "POST",
    path: "",
    query: "",
    headers: { "content-type": "application/json", ...(token !== null ? { "x-telegram-bot-api-secret-token": token } : {}) },
    body: new TextEncoder().encode(typeof update === "string" ? update : JSON.stringify(update)),
    ...over,
  };
}

async function parse(req: WebhookRequest, on: SandboxPool = p): Promise<ParseResult> {
  return out<ParseResult>(await on.call("parse", packr.pack(req)));
}

async function parsedMessages(update: unknown): Promise<InboundMessage[]> {
  const r = await parse(webhook(update));
  expect(r.response.status).toBe(200);
  return r.messages;
}

describe("telegram parse: Update -> message", () => {
  it("a private text message", async () => {
    const u = telegramUpdate({ chatId: 4242, text: "hello ü", messageId: 17 });
    expect(await parsedMessages(u)).toEqual([
      { peer: "4242", peerKind: "direct", sender: "4242", senderName: "Test", content: "hello ü", attachments: [], platformMessageId: "4242:17" },
    ]);
  });

  it("supergroup with a forum topic, large negative chat ids; group; channel post", async () => {
    const sg = telegramUpdate({ chatId: -1001234567890, chatType: "supergroup", fromId: 99, text: "in topic", messageId: 5, threadId: 321 });
    expect(await parsedMessages(sg)).toEqual([
      {
        peer: "-1001234567890",
        peerKind: "group",
        sender: "99",
        senderName: "Test",
        thread: "321",
        content: "in topic",
        attachments: [],
        platformMessageId: "-1001234567890:5",
      },
    ]);
    const g = telegramUpdate({ chatId: -555, chatType: "group", fromId: 7, text: "hi all", messageId: 6 });
    expect((await parsedMessages(g))[0]).toMatchObject({ peer: "-555", peerKind: "group", sender: "7" });
    const ch = telegramUpdate({ chatId: -100777, chatType: "channel", text: "news", messageId: 8, field: "channel_post" });
    expect(await parsedMessages(ch)).toEqual([
      { peer: "-100777", peerKind: "channel", sender: "-100777", senderName: "Chat -100777", content: "news", attachments: [], platformMessageId: "-100777:8" },
    ]);
  });

  it("groups: mentionsBot from a `mention` entity of the bot's username (getMe) or a `text_mention` of its id; replyToBot from reply_to_message.from", async () => {
    const botId = Number(tg.token.split(":")[0]);
    const group = (text: string, extra: Record<string, unknown>) => telegramUpdate({ chatId: -555, chatType: "group", fromId: 7, text, extra });
    const [m1] = await parsedMessages(group("hey @Test_Bot look", { entities: [{ type: "mention", offset: 4, length: 9 }] }));
    expect(m1).toMatchObject({ mentionsBot: true, senderName: "Test" });
    expect(m1!.replyToBot).toBeUndefined();
    const [m2] = await parsedMessages(group("hey @other_bot", { entities: [{ type: "mention", offset: 4, length: 10 }] }));
    expect(m2!.mentionsBot).toBeUndefined();
    const [m3] = await parsedMessages(
      group("hey you", { entities: [{ type: "text_mention", offset: 4, length: 3, user: { id: botId, is_bot: true, first_name: "Bot" } }] }),
    );
    expect(m3!.mentionsBot).toBe(true);
    const [m4] = await parsedMessages(
      group("ok", { reply_to_message: { message_id: 1, date: 0, chat: { id: -555, type: "group" }, from: { id: botId, is_bot: true, first_name: "Bot" } } }),
    );
    expect(m4).toMatchObject({ replyToBot: true });
    const [m5] = await parsedMessages(
      group("ok", { reply_to_message: { message_id: 1, date: 0, chat: { id: -555, type: "group" }, from: { id: 5, is_bot: false, first_name: "X" } } }),
    );
    expect(m5!.replyToBot).toBeUndefined();
    // A private chat needs no getMe: mentions matter in groups only.
    const before = tg.calls.filter((c) => c.method === "getMe").length;
    await parsedMessages(telegramUpdate({ chatId: 4242, text: "@test_bot hi", extra: { entities: [{ type: "mention", offset: 0, length: 9 }] } }));
    expect(tg.calls.filter((c) => c.method === "getMe").length).toBe(before);
  });

  it("a photo the Bot API can serve carries its download URL with the token as a host-side secret", async () => {
    const id = tg.addFile(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]), "p.jpg");
    const u = telegramUpdate({ chatId: 9, caption: "pic", extra: { photo: [{ file_id: id, file_unique_id: "z", width: 1, height: 1, file_size: 4 }] } });
    const [m] = await parsedMessages(u);
    expect(m!.attachments[0]!.fetch).toEqual({ url: `${tg.url}/file/bot{{secret:TELEGRAM_BOT_TOKEN}}/photos/${id}-p.jpg` });
  });

  it("an edit is a new message id; a redelivered update keeps its id", async () => {
    const u = telegramUpdate({ chatId: 1, text: "v1", messageId: 40 });
    const [a] = await parsedMessages(u);
    const [b] = await parsedMessages(u);
    expect(a!.platformMessageId).toBe(b!.platformMessageId);
    const edit = telegramUpdate({ chatId: 1, text: "v2", messageId: 40, field: "edited_message", editDate: 1700000000 });
    expect((await parsedMessages(edit))[0]).toMatchObject({ content: "v2", platformMessageId: "1:40:edit:1700000000" });
  });

  it("attachments: photo (largest size), document, voice, sticker; caption as content", async () => {
    const u = telegramUpdate({
      chatId: 9,
      caption: "look",
      messageId: 50,
      extra: {
        photo: [
          { file_id: "small", file_unique_id: "s", width: 90, height: 90, file_size: 1000 },
          { file_id: "big", file_unique_id: "b", width: 1280, height: 1280, file_size: 98765 },
        ],
        document: { file_id: "doc1", file_unique_id: "d", file_name: "report.pdf", mime_type: "application/pdf", file_size: 12345 },
      },
    });
    expect((await parsedMessages(u))[0]).toEqual({
      peer: "9",
      peerKind: "direct",
      sender: "9",
      senderName: "Test",
      content: "look",
      attachments: [
        { kind: "image", ref: "big", mime: "image/jpeg", size: 98765 },
        { kind: "file", ref: "doc1", name: "report.pdf", mime: "application/pdf", size: 12345 },
      ],
      platformMessageId: "9:50",
    });
    const voice = telegramUpdate({ chatId: 9, messageId: 51, extra: { voice: { file_id: "v1", file_unique_id: "v", duration: 3, mime_type: "audio/ogg" } } });
    expect((await parsedMessages(voice))[0]).toMatchObject({ content: "", attachments: [{ kind: "audio", ref: "v1", mime: "audio/ogg" }] });
    const sticker = telegramUpdate({
      chatId: 9,
      messageId: 52,
      extra: { sticker: { file_id: "st", file_unique_id: "x", width: 512, height: 512, is_animated: false, is_video: false, type: "regular" } },
    });
    expect((await parsedMessages(sticker))[0]?.attachments).toEqual([{ kind: "sticker", ref: "st" }]);
  });

  it("updates without a message to answer (callbacks, member changes, bots) are acknowledged with 200 and no messages", async () => {
    const callback = { update_id: 1, callback_query: { id: "cb", from: { id: 1, is_bot: false, first_name: "A" }, data: "x" } };
    expect(await parse(webhook(callback))).toEqual({
      response: { status: 200, headers: { "content-type": "application/json" }, body: '{"ok":true}' },
      messages: [],
    });
    const joined = telegramUpdate({ chatId: -5, chatType: "group", messageId: 3, extra: { new_chat_members: [{ id: 2, is_bot: false, first_name: "B" }] } });
    expect(await parsedMessages(joined)).toEqual([]);
    const fromBot = telegramUpdate({ chatId: -5, chatType: "group", text: "You said: hi", extra: { from: { id: 8, is_bot: true, first_name: "OtherBot" } } });
    expect(await parsedMessages(fromBot)).toEqual([]);
  });

  it("a missing or wrong secret token gets 401 and no messages, as does a plugin without the secret granted", async () => {
    const u = telegramUpdate({ chatId: 1, text: "hi" });
    for (const token of [null, "", "wrong", `${SECRET_TOKEN}x`, SECRET_TOKEN.slice(0, -1)]) {
      expect(await parse(webhook(u, token)), String(token)).toEqual({
        response: { status: 401, headers: { "content-type": "application/json" }, body: '{"error":"bad secret token"}' },
        messages: [],
      });
    }
    const noSecret = await pool({ ...grant(), secrets: { TELEGRAM_BOT_TOKEN: tg.token } });
    expect((await parse(webhook(u), noSecret)).response.status).toBe(401);
  });

  it("malformed bodies get 400, other methods 405", async () => {
    expect((await parse(webhook("{oops"))).response).toMatchObject({ status: 400, body: '{"error":"the body is not a JSON Update object"}' });
    expect((await parse(webhook({ message: {} }))).response).toMatchObject({ status: 400, body: '{"error":"the Update has no integer update_id"}' });
    expect((await parse(webhook("", SECRET_TOKEN, { method: "GET" }))).response.status).toBe(405);
  });
});

describe("telegram send: sendMessage", () => {
  it("posts {chat_id, text, message_thread_id, reply_parameters} to /bot<token>/sendMessage; receipt chat:message_id", async () => {
    const msg: OutboundMessage = { account: "default", peer: "-1001234567890", thread: "321", content: "answer ü", replyTo: "-1001234567890:5" };
    const receipt = out<SendReceipt>(await p.call("send", packr.pack(msg)));
    expect(tg.calls).toHaveLength(1);
    expect(tg.calls[0]!.token).toBe(tg.token);
    expect(tg.calls[0]!.json).toEqual({
      chat_id: -1001234567890,
      text: "answer ü",
      message_thread_id: 321,
      reply_parameters: { message_id: 5, allow_sending_without_reply: true },
    });
    expect(receipt).toEqual({ platformMessageId: `-1001234567890:${tg.sent[0]!.message_id}` });
    // A username peer stays a string; no thread, no reply.
    await p.call("send", packr.pack({ account: "default", peer: "@mychannel", content: "x" }));
    expect(tg.calls[1]!.json).toEqual({ chat_id: "@mychannel", text: "x" });
  });

  it("splits text over 4096 characters into several messages, at a line break when there is one", async () => {
    const long = `${"a".repeat(3000)}\n${"b".repeat(3000)}\n${"c".repeat(10)}`;
    const receipt = out<SendReceipt>(await p.call("send", packr.pack({ account: "default", peer: "1", content: long })));
    expect(tg.sent.map((s) => s.text)).toEqual(["a".repeat(3000), `${"b".repeat(3000)}\n${"c".repeat(10)}`]);
    expect(receipt.platformMessageId).toBe(`1:${tg.sent[0]!.message_id}`);
    const noBreaks = "x".repeat(9000);
    await p.call("send", packr.pack({ account: "default", peer: "1", content: noBreaks }));
    expect(tg.sent.slice(2).map((s) => s.text.length)).toEqual([4096, 4096, 808]);
  });

  it("an empty message is refused before any request", async () => {
    const before = tg.calls.length;
    const r = await p.call("send", packr.pack({ account: "default", peer: "1", content: "" }));
    expect(!r.ok && r.message).toBe("plugin 'telegram': cannot send to Telegram: the message is empty");
    expect(tg.calls.length).toBe(before);
  });

  it("a Bot API error is a send failure naming the description, never the token", async () => {
    tg.failNextSend(403, "Forbidden: bot was blocked by the user");
    const r = await p.call("send", packr.pack({ account: "default", peer: "1", content: "x" }));
    expect(r).toMatchObject({ ok: false, kind: "plugin_error" });
    expect(!r.ok && r.message).toBe("plugin 'telegram': telegram sendMessage failed (HTTP 403, error_code 403): Forbidden: bot was blocked by the user");
    const badToken = await pool({ ...grant(), secrets: { TELEGRAM_BOT_TOKEN: "999:wrong", TELEGRAM_SECRET_TOKEN: SECRET_TOKEN } });
    const r2 = await badToken.call("send", packr.pack({ account: "default", peer: "1", content: "x" }));
    expect(!r2.ok && r2.message).toBe("plugin 'telegram': telegram sendMessage failed (HTTP 401, error_code 401): Unauthorized");
    for (const x of [r, r2]) expect(JSON.stringify(x)).not.toContain(tg.token);
  });
});

describe("telegram edit: editMessageText (progressive replies)", () => {
  async function sendOne(content: string): Promise<string> {
    return out<SendReceipt>(await p.call("send", packr.pack({ account: "default", peer: "77", content }))).platformMessageId!;
  }

  it("edits the message by its receipt id; the same text again succeeds; over 4096 characters the rest is the overflow", async () => {
    const id = await sendOne("first words");
    expect(
      out<EditResult>(await p.call("edit", packr.pack({ account: "default", peer: "77", platformMessageId: id, content: "first words and more" }))),
    ).toEqual({});
    expect(tg.calls.at(-1)!.json).toEqual({ chat_id: 77, message_id: tg.sent[0]!.message_id, text: "first words and more" });
    expect(tg.sent[0]!.text).toBe("first words and more");
    // A resend after a crash: "message is not modified" is not an error.
    expect(
      out<EditResult>(await p.call("edit", packr.pack({ account: "default", peer: "77", platformMessageId: id, content: "first words and more" }))),
    ).toEqual({});
    const long = `${"a".repeat(4000)}\n${"b".repeat(500)}`;
    const r = out<EditResult>(await p.call("edit", packr.pack({ account: "default", peer: "77", platformMessageId: id, content: long })));
    expect(tg.sent[0]!.text).toBe("a".repeat(4000));
    expect(r).toEqual({ overflow: "b".repeat(500) });
    expect(tg.sent).toHaveLength(1);
  });

  it("a deleted message is a permanent failure (the host sends anew); a 429 names the wait", async () => {
    const id = await sendOne("soon gone");
    tg.deleteMessage(tg.sent[0]!.message_id);
    const gone = await p.call("edit", packr.pack({ account: "default", peer: "77", platformMessageId: id, content: "edited" }));
    expect(!gone.ok && gone.message).toMatch(/permanent: telegram editMessageText failed \(HTTP 400.*message to edit not found/);
    const limited = await startFakeTelegram({ rate: { edits: 0, perMs: 60_000 } });
    try {
      const q = await pool({
        ...grant(),
        secrets: { TELEGRAM_BOT_TOKEN: limited.token, TELEGRAM_SECRET_TOKEN: SECRET_TOKEN },
        config: { base_url: limited.url },
      });
      const id2 = out<SendReceipt>(await q.call("send", packr.pack({ account: "default", peer: "77", content: "x" }))).platformMessageId!;
      const r = await q.call("edit", packr.pack({ account: "default", peer: "77", platformMessageId: id2, content: "y" }));
      expect(!r.ok && r.message).toMatch(/HTTP 429.*retry after 1000 ms$/);
      expect(!r.ok && r.message).not.toMatch(/permanent/);
    } finally {
      await limited.close();
    }
  });
});

describe("telegram send_file: sendPhoto / sendDocument", () => {
  it("a photo goes by sendPhoto, anything else by sendDocument, as multipart/form-data with chat_id, thread and caption", async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 1, 2, 0xff]);
    const before = tg.filesSent.length;
    const r1 = out<SendReceipt>(
      await p.call(
        "send_file",
        packr.pack({ account: "default", peer: "42", thread: "7", file: { data: png, mime: "image/png", name: "p.png", caption: "look" } }),
      ),
    );
    const pdf = Buffer.from("%PDF-1.4\n\u0000binary", "latin1");
    await p.call("send_file", packr.pack({ account: "default", peer: "42", file: { data: pdf, mime: "application/pdf", name: "r.pdf" } }));
    const [photo, doc] = tg.filesSent.slice(before);
    expect(photo).toMatchObject({ method: "sendPhoto", chat_id: "42", message_thread_id: "7", caption: "look", name: "p.png", type: "image/png" });
    expect(Buffer.compare(photo!.bytes, png)).toBe(0);
    expect(r1).toEqual({ platformMessageId: `42:${photo!.message_id}` });
    expect(doc).toMatchObject({ method: "sendDocument", chat_id: "42", caption: undefined, name: "r.pdf", type: "application/pdf" });
    expect(Buffer.compare(doc!.bytes, pdf)).toBe(0);
  });

  it("the largest file the host lets through (media.send_max_bytes at most 2 MiB) fits the default 16 MiB plugin memory", async () => {
    const size = MAX_SEND_MAX_BYTES;
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = (i * 31) & 0xff;
    const before = tg.filesSent.length;
    const t0 = performance.now();
    const r = await p.call("send_file", packr.pack({ account: "default", peer: "42", file: { data, mime: "application/pdf", name: "big.pdf" } }));
    const ms = performance.now() - t0;
    expect(r.ok, !r.ok ? r.message : "").toBe(true);
    expect(Buffer.compare(tg.filesSent.slice(before)[0]!.bytes, data)).toBe(0);
    console.log(`send_file of ${size} bytes through the telegram plugin (16 MiB memory): ${ms.toFixed(0)} ms`);
  }, 60_000);

  it("a 4xx from the Bot API is a permanent failure (not retried), a 5xx is not", async () => {
    const file = { data: Buffer.from("hi"), mime: "text/plain", name: "a.txt" };
    tg.failNextSend(400, "Bad Request: file must be non-empty");
    const r = await p.call("send_file", packr.pack({ account: "default", peer: "42", file }));
    expect(!r.ok && r.message).toBe(
      "plugin 'telegram': permanent: telegram sendDocument failed (HTTP 400, error_code 400): Bad Request: file must be non-empty",
    );
    tg.failNextSend(502, "Bad Gateway");
    const r2 = await p.call("send_file", packr.pack({ account: "default", peer: "42", file }));
    expect(!r2.ok && r2.message).toMatch(/^plugin 'telegram': telegram sendDocument failed \(HTTP 502/);
  });
});

describe("telegram poll: getUpdates", () => {
  it("returns the queued messages and cursor = last update_id + 1; the next poll confirms them with offset", async () => {
    tg.enqueue(telegramUpdate({ chatId: 1, text: "one", messageId: 1, updateId: 1000 }));
    tg.enqueue({ update_id: 1001, callback_query: { id: "x" } } as never); // filtered by allowed_updates
    tg.enqueue(telegramUpdate({ chatId: 2, text: "two", messageId: 2, updateId: 1002 }));
    const first = out<PollResult>(await p.call("poll", packr.pack({ account: "default" })));
    expect(first.messages.map((m) => [m.peer, m.content, m.platformMessageId])).toEqual([
      ["1", "one", "1:1"],
      ["2", "two", "2:2"],
    ]);
    expect(first.cursor).toBe("1003");
    expect(tg.calls[0]!.json).toMatchObject({ timeout: 0, limit: 100, allowed_updates: ["message", "edited_message", "channel_post", "edited_channel_post"] });
    expect(tg.calls[0]!.json.offset).toBeUndefined();

    const again = out<PollResult>(await p.call("poll", packr.pack({ account: "default", cursor: first.cursor })));
    expect(tg.calls[1]!.json.offset).toBe(1003);
    expect(again).toEqual({ messages: [], cursor: "1003" }); // nothing new: the cursor is kept
    expect(tg.pending()).toEqual([]);
  });

  it("a failed getUpdates is a poll failure with the description", async () => {
    const badToken = await pool({ ...grant(), secrets: { TELEGRAM_BOT_TOKEN: "999:wrong", TELEGRAM_SECRET_TOKEN: SECRET_TOKEN } });
    const r = await badToken.call("poll", packr.pack({ account: "default", cursor: "5" }));
    expect(!r.ok && r.message).toBe("plugin 'telegram': telegram getUpdates failed (HTTP 401, error_code 401): Unauthorized");
  });
});
