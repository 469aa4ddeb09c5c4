// The SDK's channel contract helpers (plugin-sdk/assembly/channel.ts), through the channel-kit
// fixture in a real sandbox: what the readers decode from host-encoded input, what the writers
// encode (checked with msgpackr against host/src/channels/types.ts), and hmacVerify /
// secretEquals against the host functions.
import { createHmac } from "node:crypto";
import { Packr, Unpackr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutboundMessage, ParseResult, PollRequest, PollResult, SendReceipt, WebhookRequest } from "../../host/src/channels/types.js";
import type { CallOutcome, SandboxPool } from "../../host/src/plugins/sandbox/index.js";
import { fixturePool } from "../plugins/sandbox/support.js";

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const KEY = "hook-key-1";

let pool: SandboxPool;

beforeAll(async () => {
  pool = await fixturePool("channel-kit", { grant: { secrets: { HOOK_KEY: KEY, TOKEN: "tok-7" } } });
});
afterAll(async () => {
  await pool?.close();
});

function out<T>(r: CallOutcome): T {
  if (!r.ok) throw new Error(`call failed: ${r.kind}: ${r.message}`);
  return unpackr.unpack(r.output) as T;
}

function request(over: Partial<WebhookRequest> = {}): WebhookRequest {
  return {
    channel: "kit",
    account: "main",
    method: "POST",
    path: "/x",
    query: "a=1%202&b=caf%C3%A9+ol%C3%A9&c",
    headers: { "content-type": "application/json" },
    body: new TextEncoder().encode('{"hi":"ü"}'),
    ...over,
  };
}

async function parse(req: WebhookRequest): Promise<ParseResult> {
  return out<ParseResult>(await pool.call("parse", packr.pack(req)));
}

const contentOf = (r: ParseResult): Record<string, string> =>
  Object.fromEntries((r.messages[0]?.content ?? "").split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));

describe("parse: readWebhookRequest and writeParseResult", () => {
  it("decode every request field, the query and headers; encode response and messages with the contract's keys", async () => {
    const r = await parse(request());
    expect(r.response).toEqual({ status: 202, headers: { "x-reply": "yes" }, body: "accepted" });
    expect(contentOf(r)).toEqual({
      channel: "kit",
      account: "main",
      method: "POST",
      path: "/x",
      "q.a": "1 2",
      "q.b": "café olé",
      "q.c": "",
      body: '{"hi":"ü"}',
      hex: Buffer.from('{"hi":"ü"}').toString("hex"),
      hexRound: "ok",
      badHex: "null",
      signed: "no",
      token: "no",
    });
    expect(r.messages).toHaveLength(2);
    const { content: _c, ...first } = r.messages[0]!;
    expect(first).toEqual({
      account: "acct-override",
      peer: "peer-1",
      peerKind: "group",
      sender: "user-9",
      guild: "g1",
      team: "t1",
      thread: "th1",
      attachments: [{ kind: "image", ref: "file-1", name: "a.png", mime: "image/png", size: 1234 }, { kind: "file" }],
      platformMessageId: "pm-1",
    });
    // Optional fields the plugin did not set are absent, not empty strings.
    expect(r.messages[1]).toEqual({ peer: "peer-2", peerKind: "direct", content: "second", attachments: [], platformMessageId: "pm-2" });
  });

  it("missing query parameter reads null; empty body and query are fine", async () => {
    const c = contentOf(await parse(request({ query: "", body: new Uint8Array(0), headers: {} })));
    expect([c["q.a"], c["q.b"], c["body"], c["hex"]]).toEqual(["<nil>", "<nil>", "", ""]);
  });

  it("hmacVerify and secretEquals through the host: good signature / token accepted, bad ones answered 401", async () => {
    const body = new TextEncoder().encode('{"n":1}');
    const sig = createHmac("sha256", KEY).update(body).digest("hex");
    expect(contentOf(await parse(request({ query: "auth", body, headers: { "x-signature": sig } })))["signed"]).toBe("yes");
    expect(contentOf(await parse(request({ query: "auth", body, headers: { "x-token": "tok-7" } })))["token"]).toBe("yes");
    for (const headers of [{ "x-signature": sig.replace(/^./, sig[0] === "0" ? "1" : "0") }, { "x-token": "tok-8" }, {}] as Record<string, string>[]) {
      const r = await parse(request({ query: "auth", body, headers }));
      expect(r).toEqual({ response: { status: 401, headers: { "content-type": "application/json" }, body: '{"error":"bad signature"}' }, messages: [] });
    }
  });

  it("a malformed input or a plugin error is an Extism error with the reason", async () => {
    const bad = await pool.call("parse", packr.pack({ method: "POST" }));
    expect(bad).toMatchObject({ ok: false, kind: "plugin_error", message: "plugin 'channel-kit': invalid parse input: 'channel' must be a string" });
    const notMap = await pool.call("parse", packr.pack([1, 2]));
    expect(notMap).toMatchObject({ ok: false, kind: "plugin_error", message: "plugin 'channel-kit': invalid parse input: expected a MessagePack map" });
    expect(await pool.call("parse", packr.pack(request({ query: "fail" })))).toMatchObject({
      ok: false,
      kind: "plugin_error",
      message: "plugin 'channel-kit': asked to fail",
    });
  });
});

describe("send and poll", () => {
  it("readOutboundMessage / writeSendReceipt", async () => {
    const msg: OutboundMessage = { account: "a1", peer: "p1", thread: "t1", content: "hello ü", replyTo: "m9" };
    expect(out<SendReceipt>(await pool.call("send", packr.pack(msg)))).toEqual({ platformMessageId: "a1|p1|t1|hello ü|m9" });
    const plain: OutboundMessage = { account: "a1", peer: "p1", content: "x" };
    expect(out<SendReceipt>(await pool.call("send", packr.pack(plain)))).toEqual({ platformMessageId: "a1|p1|<nil>|x|<nil>" });
    expect(await pool.call("send", packr.pack({ ...plain, content: "fail" }))).toMatchObject({
      ok: false,
      kind: "plugin_error",
      message: "plugin 'channel-kit': platform said no",
    });
    expect(await pool.call("send", packr.pack({ account: "a1", content: "x" }))).toMatchObject({
      ok: false,
      message: "plugin 'channel-kit': invalid send input: 'peer' must be a string",
    });
  });

  it("readPollRequest / writePollResult carry the cursor", async () => {
    const first = out<PollResult>(await pool.call("poll", packr.pack({ account: "a1" } satisfies PollRequest)));
    expect(first).toEqual({ messages: [{ peer: "p", peerKind: "direct", content: "poll a1 0", attachments: [], platformMessageId: "u0" }], cursor: "1" });
    const next = out<PollResult>(await pool.call("poll", packr.pack({ account: "a1", cursor: first.cursor } satisfies PollRequest)));
    expect(next.cursor).toBe("2");
    expect(next.messages[0]?.content).toBe("poll a1 1");
  });
});

describe("platform-plugin helpers: splitText, truncate, isAsciiDigits, stringField, ParseReply", () => {
  interface Helpers {
    pieces: string[];
    truncated: string;
    digits: boolean;
    field: string | null;
  }
  const helpers = async (text: string, max: number, extra: { digitsMax?: number; obj?: unknown; key?: string } = {}): Promise<Helpers> =>
    out<Helpers>(await pool.call("helpers", packr.pack({ text, max, digitsMax: extra.digitsMax ?? 12, obj: extra.obj ?? null, key: extra.key ?? "k" })));

  it("splitText prefers a line break, then a space, in the second half of the window and drops only that break", async () => {
    expect((await helpers(`${"a".repeat(6)}\n${"b".repeat(6)}`, 10)).pieces).toEqual(["aaaaaa", "bbbbbb"]);
    expect((await helpers("aaaaaa bbbbbb", 10)).pieces).toEqual(["aaaaaa", "bbbbbb"]);
    // A break in the first half would leave a short piece: cut hard at max instead.
    expect((await helpers(`ab\n${"c".repeat(12)}`, 10)).pieces).toEqual(["ab\nccccccc", "ccccc"]);
    expect((await helpers("", 10)).pieces).toEqual([]);
    expect((await helpers("short", 10)).pieces).toEqual(["short"]);
    const long = "x".repeat(25);
    const pieces = (await helpers(long, 10)).pieces;
    expect(pieces.map((p) => p.length)).toEqual([10, 10, 5]);
    expect(pieces.join("")).toBe(long);
  });

  it("splitText never cuts a surrogate pair", async () => {
    const text = `${"a".repeat(9)}😀${"b".repeat(5)}`; // the emoji's high surrogate is unit 10
    const pieces = (await helpers(text, 10)).pieces;
    expect(pieces).toEqual(["a".repeat(9), `😀${"b".repeat(5)}`]);
    for (const p of pieces) expect(p.length).toBeLessThanOrEqual(10);
  });

  it("truncate, isAsciiDigits and stringField", async () => {
    expect((await helpers("abcdefghijkl", 5)).truncated).toBe("abcde...");
    expect((await helpers("abc", 5)).truncated).toBe("abc");
    expect((await helpers("0123456789", 5, { digitsMax: 10 })).digits).toBe(true);
    expect((await helpers("0123456789", 5, { digitsMax: 9 })).digits).toBe(false);
    for (const s of ["", "12a", "-1", "1.5", "١٢"]) expect((await helpers(s, 5)).digits, s).toBe(false);
    expect((await helpers("x", 5, { obj: { k: "v" } })).field).toBe("v");
    for (const obj of [{ k: 1 }, { other: "v" }, ["v"], null, "k"]) expect((await helpers("x", 5, { obj })).field).toBeNull();
  });

  it("ParseReply.write (writeTextParseResult): a text/plain body, or neither body nor headers for an empty text", async () => {
    const r = await parse(request({ query: "text", body: new TextEncoder().encode("challenge-ü") }));
    expect(r).toEqual({ response: { status: 200, headers: { "content-type": "text/plain; charset=utf-8" }, body: "challenge-ü" }, messages: [] });
    expect(await parse(request({ query: "text", body: new Uint8Array(0) }))).toEqual({ response: { status: 200 }, messages: [] });
  });
});
