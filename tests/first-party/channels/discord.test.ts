// The `discord` channel plugin's REST side (plugins/channels/discord), compiled from source and run
// in a real sandbox pool against the fake Discord (tests/support/platforms/discord.mjs): the
// 2,000-character split, replies, nonces that make a resend create nothing twice, and the rate
// limit headers (X-RateLimit-Remaining / Reset-After, 429 retry_after) honoured: no request is
// made to a channel whose bucket is empty.
import { Packr, Unpackr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutboundMessage } from "../../../host/src/channels/types.js";
import { DEFAULT_LIMITS, type EffectiveGrant } from "../../../host/src/plugins/capabilities.js";
import { createHostServices, createSandboxPool, type CallOutcome, type SandboxPool } from "../../../host/src/plugins/sandbox/index.js";
import { buildPlugin } from "../../../scripts/build-plugins.mjs";
import { captureLogger, tempDir } from "../../plugins/sandbox/support.js";
import { startFakeDiscord, type FakeDiscord } from "../../support/platforms/discord.mjs";

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

let wasm: Uint8Array;
let dc: FakeDiscord;
let p: SandboxPool;

beforeAll(async () => {
  ({ wasm } = await buildPlugin("plugins/channels/discord"));
  // Two requests per channel per 1.5 s.
  dc = await startFakeDiscord({ rateLimit: { limit: 2, resetAfterMs: 1500 } });
  const grant: EffectiveGrant = {
    http: { hosts: ["127.0.0.1"] },
    secrets: { DISCORD_BOT_TOKEN: dc.token },
    config: { api_base: dc.apiBase },
    clock: true,
    random: true,
    kv: { quotaBytes: 1024 * 1024 },
  };
  p = createSandboxPool({
    name: "discord",
    wasm,
    grant,
    limits: { ...DEFAULT_LIMITS, timeoutMs: 10_000 },
    stateDir: await tempDir("exoclaw-state-"),
    services: createHostServices(),
    logger: captureLogger(),
  });
}, 120_000);

afterAll(async () => {
  await p?.close();
  await dc?.close();
});

const send = (m: OutboundMessage): Promise<CallOutcome> => p.call("send", packr.pack(m));
const posts = (channel: string) => dc.calls.filter((c) => c.method === "POST" && c.path === `/api/v10/channels/${channel}/messages`);

describe("discord send", () => {
  it("a reply is posted in the channel with the token, answering the message, pinging nobody", async () => {
    const r = await send({ account: "default", peer: "5001", content: "hello", replyTo: "7001", replyId: "reply-a" });
    expect(r.ok).toBe(true);
    const receipt = r.ok ? (unpackr.unpack(r.output) as { platformMessageId?: string }) : {};
    const call = posts("5001")[0]!;
    expect(call.headers.authorization).toBe(`Bot ${dc.token}`);
    expect(call.json).toMatchObject({
      content: "hello",
      allowed_mentions: { parse: [] },
      message_reference: { message_id: "7001", fail_if_not_exists: false },
      enforce_nonce: true,
    });
    expect(receipt.platformMessageId).toBe(dc.sent.find((s) => s.channel_id === "5001")!.id);
  });

  it("4,500 characters go out as three parts; the bucket running empty stops the send, and the retry repeats nothing", async () => {
    const words = Array.from({ length: 900 }, (_, i) => `w${String(i).padStart(3, "0")}`); // 900 x 5 - 1 = 4,499 characters
    const content = words.join(" ");
    const msg: OutboundMessage = { account: "default", peer: "5002", content, replyTo: "7002", replyId: "reply-b" };
    const first = await send(msg);
    // Two parts used the bucket (limit 2); the third must wait for X-RateLimit-Reset-After.
    expect(first.ok).toBe(false);
    expect(!first.ok && first.message).toMatch(/rate limit reached on channel 5002; retry after \d+ ms \(after 2 of 3 parts were sent\)/);
    expect(posts("5002")).toHaveLength(2);
    // Retried at once (as the outbox might): refused without a request.
    const early = await send(msg);
    expect(!early.ok && early.message).toMatch(/is rate limited; retry after \d+ ms/);
    expect(posts("5002")).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 1700));
    const again = await send(msg);
    expect(again.ok ? "ok" : again.message).toBe("ok");
    const created = dc.sent.filter((s) => s.channel_id === "5002");
    // Parts 1 and 2 were not sent again: only the third part was posted.
    expect(created).toHaveLength(3);
    expect(posts("5002")).toHaveLength(3);
    expect(created.every((s) => [...s.content].length <= 2000)).toBe(true);
    expect(created.map((s) => s.content).join(" ")).toBe(content);
    expect(created[0]!.message_reference?.message_id).toBe("7002");
    expect(created[1]!.message_reference).toBeUndefined();
    expect(new Set(created.map((s) => s.nonce)).size).toBe(3);
    expect(dc.violations).toEqual([]);
  }, 60_000);

  it("a 429 blocks the channel for retry_after; the next send waits without a request", async () => {
    // Empty the bucket of channel 5003 from outside the plugin (another client of the same bot).
    for (let i = 0; i < 2; i++) {
      await fetch(`${dc.apiBase}/channels/5003/messages`, {
        method: "POST",
        headers: { authorization: `Bot ${dc.token}`, "content-type": "application/json" },
        body: JSON.stringify({ content: `other ${i}` }),
      });
    }
    const violationsBefore = dc.violations.length;
    const r = await send({ account: "default", peer: "5003", content: "late", replyId: "reply-c" });
    expect(!r.ok && r.message).toMatch(/rate limited \(429\) on channel 5003; retry after \d+ ms/);
    const postsAfter429 = posts("5003").length;
    const early = await send({ account: "default", peer: "5003", content: "late", replyId: "reply-c" });
    expect(!early.ok && early.message).toMatch(/is rate limited/);
    expect(posts("5003")).toHaveLength(postsAfter429);
    expect(dc.violations.length).toBe(violationsBefore + 1); // the one 429 the plugin could not foresee
    await new Promise((r) => setTimeout(r, 1700));
    expect((await send({ account: "default", peer: "5003", content: "late", replyId: "reply-c" })).ok).toBe(true);
    expect(dc.sent.filter((s) => s.channel_id === "5003" && s.content === "late")).toHaveLength(1);
  }, 60_000);

  it("an empty message or a peer that is not a channel id is refused as permanent", async () => {
    const empty = await send({ account: "default", peer: "5004", content: "" });
    expect(!empty.ok && empty.message).toMatch(/permanent: cannot send to Discord: the message is empty/);
    const bad = await send({ account: "default", peer: "general", content: "x" });
    expect(!bad.ok && bad.message).toMatch(/permanent: .* is not a channel id/);
  });
});

describe("discord edit (progressive replies)", () => {
  const edit = (m: { peer: string; platformMessageId: string; content: string; thread?: string }): Promise<CallOutcome> =>
    p.call("edit", packr.pack({ account: "default", ...m }));

  it("PATCHes the message's content (2,000 characters, the rest as overflow); a spent bucket is reported as retryAfterMs; an unknown message is permanent", async () => {
    const violations = dc.violations.length;
    const r = await send({ account: "default", peer: "5101", content: "first" });
    const id = r.ok ? (unpackr.unpack(r.output) as { platformMessageId: string }).platformMessageId : "";
    // The send took one of the channel's two requests; this edit takes the last one.
    const e = await edit({ peer: "5101", platformMessageId: id, content: `${"x".repeat(1990)} ${"y".repeat(100)}` });
    expect(e.ok).toBe(true);
    const result = e.ok ? (unpackr.unpack(e.output) as { overflow?: string; retryAfterMs?: number }) : {};
    const patch = dc.calls.filter((c) => c.method === "PATCH").at(-1)!;
    expect(patch.path).toBe(`/api/v10/channels/5101/messages/${id}`);
    expect(patch.headers.authorization).toBe(`Bot ${dc.token}`);
    expect(patch.json).toEqual({ content: "x".repeat(1990), allowed_mentions: { parse: [] } });
    expect(result.overflow).toBe("y".repeat(100));
    expect(result.retryAfterMs).toBeGreaterThan(0);
    // Blocked until the reset: refused without a request (transient, naming the wait).
    const calls = dc.calls.length;
    const blocked = await edit({ peer: "5101", platformMessageId: id, content: "again" });
    expect(!blocked.ok && blocked.message).toMatch(/rate limited; retry after \d+ ms/);
    expect(!blocked.ok && blocked.message).not.toMatch(/permanent/);
    expect(dc.calls.length).toBe(calls);
    await new Promise((res) => setTimeout(res, 1600));
    const gone = await edit({ peer: "5101", platformMessageId: "999999999999999999", content: "x" });
    expect(!gone.ok && gone.message).toMatch(/permanent: discord: HTTP 404 from PATCH/);
    expect(dc.violations.length).toBe(violations);
  });
});

describe("discord send_file", () => {
  it("the largest file the host lets through (2 MiB) goes out as files[0] with payload_json, in the default 16 MiB plugin memory", async () => {
    const { MAX_SEND_MAX_BYTES } = await import("../../../host/src/config/index.js");
    const data = Buffer.alloc(MAX_SEND_MAX_BYTES);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13) & 0xff;
    // A channel of its own: the rate limit of the send tests does not apply.
    const r = await p.call(
      "send_file",
      packr.pack({ account: "default", peer: "5099", file: { data, mime: "application/pdf", name: "big.pdf", caption: "cap" } }),
    );
    expect(r.ok, !r.ok ? r.message : "").toBe(true);
    const sent = dc.sent.find((s) => s.channel_id === "5099")!;
    expect(sent.content).toBe("cap");
    expect(sent.attachments![0]).toMatchObject({ filename: "big.pdf", content_type: "application/pdf" });
    expect(Buffer.compare(sent.attachments![0]!.bytes, data)).toBe(0);
  }, 60_000);

  it("shares the route's rate limit with send (one helper): files that spend the bucket block the next send without a request", async () => {
    const file = { data: Buffer.from("%PDF-1.4\n"), mime: "application/pdf", name: "a.pdf" };
    const violationsBefore = dc.violations.length;
    for (let i = 0; i < 2; i++) {
      const r = await p.call("send_file", packr.pack({ account: "default", peer: "5098", file }));
      expect(r.ok, !r.ok ? r.message : "").toBe(true);
    }
    // The second answer said X-RateLimit-Remaining 0: the route is blocked until its reset.
    const before = posts("5098").length;
    const blocked = await send({ account: "default", peer: "5098", content: "after files" });
    expect(!blocked.ok && blocked.message).toMatch(/channel 5098 is rate limited; retry after \d+ ms/);
    const blockedFile = await p.call("send_file", packr.pack({ account: "default", peer: "5098", file }));
    expect(!blockedFile.ok && blockedFile.message).toMatch(/channel 5098 is rate limited/);
    expect(posts("5098")).toHaveLength(before);
    expect(dc.violations.length).toBe(violationsBefore);
  }, 60_000);
});
