// The Control UI's server-side methods over a real WebSocket against the real gateway process
// (the provider emulator, real WASM plugins, the webhook channel): `events.subscribe` pushes
// over MessagePack (status coalesced to at most one a second, a session's events as they are
// written), `sessions.request` (a model call's input reconstructed from the log),
// `deadletters.*` without a bus, plugin limits in `plugin.list`, and a channel's last error per
// account in `channels.list` (redacted). Dead letters with a bus: tests/bus/gateway-webhook.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  hmacSha256Hex,
  startChannelGateway,
  startFakePlatform,
  waitUntil,
  webhookGrant,
  type ChannelGateway,
  type FakePlatform,
} from "../support/channel-gateway.js";
import { RpcClient } from "../support/gateway.js";

const TOKEN = "push-test-token-0123456789abcdef";
const ALICE_TOKEN = "push-alice-token-0123456789";
const SECRET = "push-webhook-secret-0123456789";

describe("Control UI methods over the wire", () => {
  let platform: FakePlatform;
  let gw: ChannelGateway;
  let admin: RpcClient;
  let alice: RpcClient;
  const msg = async (c: RpcClient, method: string, params?: unknown) => (await c.call(method, params, "msgpack")).response.msg;
  const pushes = (c: RpcClient, topic: string) => c.received.filter((r) => r.msg.method === "event" && r.msg.params.topic === topic);

  beforeAll(async () => {
    platform = await startFakePlatform();
    gw = await startChannelGateway({
      config: {
        gateway: { clients: [{ name: "alice", token: ALICE_TOKEN, scopes: ["chat"] }] },
        channels: { webhook: { allow: ["alice"] } },
        plugins: { grants: { webhook: webhookGrant(`${platform.url}/inbox`) } },
      } as never,
      env: { EXOCLAW_TOKEN: TOKEN, TEST_WEBHOOK_SECRET: SECRET },
    });
    admin = await RpcClient.connect(gw.gateway.url, { authorization: `Bearer ${TOKEN}` });
    alice = await RpcClient.connect(gw.gateway.url, { authorization: `Bearer ${ALICE_TOKEN}` });
  }, 120_000);

  afterAll(async () => {
    admin?.close();
    alice?.close();
    await gw?.stop();
    await platform?.close();
  });

  it("status: pushed as MessagePack with /health and /ready, at most once a second, and no more after unsubscribing", async () => {
    expect(await msg(admin, "events.subscribe", { topics: ["status"] })).toMatchObject({ result: { topics: ["status"] } });
    await waitUntil(() => pushes(admin, "status").length >= 3, 20_000, "three status pushes");
    const got = pushes(admin, "status");
    expect(got.every((r) => r.binary)).toBe(true);
    expect(got[0]!.msg.params.data).toMatchObject({ transport: expect.any(String), health: { httpStatus: 200, status: "ok" }, ready: { httpStatus: 200 } });
    // Coalesced: the gateway's own clock (uptime) moves at least ~1 s between two pushes.
    const uptimes = got.map((r) => r.msg.params.data.uptimeMs as number);
    for (let i = 2; i < uptimes.length; i++) expect(uptimes[i]! - uptimes[i - 1]!).toBeGreaterThanOrEqual(900);
    expect(await msg(admin, "events.unsubscribe", { topics: ["status"] })).toMatchObject({ result: { topics: [] } });
    await new Promise((r) => setTimeout(r, 300)); // a push already on the wire may still land
    const n = pushes(admin, "status").length;
    await new Promise((r) => setTimeout(r, 2500));
    expect(pushes(admin, "status").length).toBe(n);
  });

  it("session:<key>: a turn's events are pushed as they are written; sessions.request rebuilds what each model call was sent", async () => {
    const first = await msg(alice, "chat.send", { content: "hello", peer: "tab" });
    const key = first.result.sessionKey as string;
    expect(await msg(alice, "events.subscribe", { topics: [`session:${key}`, "sessions"] })).toMatchObject({
      result: { topics: [`session:${key}`, "sessions"] },
    });
    const send = await msg(alice, "chat.send", { content: "what is 12*(3+4)?", peer: "tab" });
    expect(send.result.text).toBe("The answer is 84.");
    const events = () => pushes(alice, `session:${key}`).flatMap((r) => r.msg.params.data.events as { seq: number; kind: string; data: any }[]);
    await waitUntil(() => events().some((e) => e.kind === "turn_ended"), 20_000, "the turn's events pushed");
    const seqs = events().map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(events()[0]).toMatchObject({ kind: "message_received", data: { content: "what is 12*(3+4)?" } });
    expect(events().map((e) => e.kind)).toEqual(expect.arrayContaining(["tool_use", "tool_result", "usage", "turn_ended"]));
    await waitUntil(() => pushes(alice, "sessions").some((r) => r.msg.params.data.sessionKeys.includes(key)), 10_000, "sessions push");

    // What each model call was sent (admin: the system prompt and tools are configuration).
    expect((await msg(alice, "sessions.request", { sessionKey: key, runId: send.result.runId })).error).toMatchObject({ code: -32010 });
    const one = (await msg(admin, "sessions.request", { sessionKey: key, runId: send.result.runId, call: 1 })).result;
    expect(one).toMatchObject({ call: 1, calls: 2, reconstructed: true, provider: "anthropic" });
    expect(one.tools.map((t: { name: string }) => t.name)).toContain("calculator");
    const texts = (m: { content: { type: string; text?: string; content?: string }[] }) => m.content.map((b) => b.text ?? b.content ?? b.type).join(" ");
    // The earlier turn, then this turn's message, last.
    expect(one.messages.map(texts)).toEqual([expect.stringContaining("hello"), expect.any(String), expect.stringContaining("what is 12*(3+4)?")]);
    const two = (await msg(admin, "sessions.request", { sessionKey: key, runId: send.result.runId, call: 2 })).result;
    expect(two.messages.length).toBe(5);
    expect(two.messages[3]).toMatchObject({
      role: "assistant",
      content: expect.arrayContaining([expect.objectContaining({ type: "tool_use", name: "calculator" })]),
    });
    expect(two.messages[4]).toMatchObject({ role: "user", content: [expect.objectContaining({ type: "tool_result", content: "84" })] });
    expect((await msg(admin, "sessions.request", { sessionKey: key, runId: send.result.runId, call: 3 })).error).toMatchObject({ code: -32602 });
    expect((await msg(admin, "sessions.request", { sessionKey: key, runId: "no-such-run" })).error).toMatchObject({ code: -32602 });
    expect((await msg(admin, "sessions.request", { sessionKey: "not-a-key", runId: "x" })).error).toMatchObject({ code: -32602 });
  }, 60_000);

  it("plugin.list shows each plugin's limits; deadletters without a bus; scopes", async () => {
    const plugins = (await msg(admin, "plugin.list")).result as { name: string; limits: Record<string, number> }[];
    expect(plugins.find((p) => p.name === "calculator")!.limits).toEqual({
      timeoutMs: 1000,
      memoryBytes: 16 * 1024 * 1024,
      maxOutputBytes: 1024 * 1024,
      maxInFlight: 4,
      maxQueued: 64,
    });
    expect((await msg(admin, "deadletters.list")).result).toEqual({ enabled: false, entries: [] });
    expect((await msg(admin, "deadletters.replay", { ids: ["1"] })).error).toMatchObject({ code: -32602, message: expect.stringMatching(/no \[bus\]/) });
    expect((await msg(admin, "deadletters.replay", {})).error).toMatchObject({ code: -32602, message: expect.stringMatching(/ids or all/) });
    for (const m of ["deadletters.list", "deadletters.replay", "deadletters.purge"])
      expect((await msg(alice, m, { ids: ["1"] })).error, m).toMatchObject({ code: -32010 });
    expect((await msg(alice, "events.subscribe", { topics: ["deadletters"] })).error).toMatchObject({ code: -32010 });
    expect((await msg(alice, "events.subscribe", { topics: ["channels"] })).error).toMatchObject({ code: -32010 });
  });

  it("channels.list: warnings and the last error per account, pushed on the channels topic, secrets redacted", async () => {
    expect(await msg(admin, "events.subscribe", { topics: ["channels"] })).toMatchObject({ result: { topics: ["channels"] } });
    await waitUntil(() => pushes(admin, "channels").length >= 1, 10_000, "channels snapshot");
    expect(pushes(admin, "channels")[0]!.msg.params.data[0]).toMatchObject({ name: "webhook", health: [] });
    // A bad signature on a good account; a good one with a signature made with the webhook secret as the peer name would be dropped (stranger).
    const body = JSON.stringify({ peer: "alice", content: "hi", messageId: "bad-sig-1" });
    const answer = await gw.postWebhook("webhook", undefined, body, { "content-type": "application/json", "x-exoclaw-signature": `sha256=${"0".repeat(64)}` });
    expect(answer.status).toBe(401);
    const health = () =>
      pushes(admin, "channels")
        .at(-1)!
        .msg.params.data.find((c: { name: string }) => c.name === "webhook").health as {
        account: string;
        warnings: number;
        last: { message: string; level: string; at: number };
      }[];
    await waitUntil(() => health().length > 0, 15_000, "the channel's health pushed");
    expect(health()[0]).toMatchObject({ warnings: 1, last: { level: "warn", message: expect.stringMatching(/bad signature/) } });
    // A stranger's message: the log names the peer, never a secret value (the webhook secret is registered).
    const stranger = JSON.stringify({ peer: SECRET, content: "x", messageId: "stranger-1" });
    await gw.postWebhook("webhook", undefined, stranger, {
      "content-type": "application/json",
      "x-exoclaw-signature": `sha256=${hmacSha256Hex(SECRET, stranger)}`,
    });
    await waitUntil(() => (health()[0]?.warnings ?? 0) >= 2, 15_000, "a second warning");
    expect(JSON.stringify(health())).not.toContain(SECRET);
  }, 60_000);
});
