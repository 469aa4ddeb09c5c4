// A hung model provider against the real gateway process and real WebSocket clients: the idle
// timeout and the turn deadline end the turn with an `error` event and free the session for its
// next message; a client that disconnects cancels its own turn (the provider request is aborted)
// unless the turn has an idempotency key; a webhook-channel turn belongs to no connection.
// Timeouts are configured short (hundreds of ms) so the tests are quick; nothing is timed.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "smol-toml";
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
import { RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

const AGENTS: FileConfig["agents"] = [
  // Idle timeout from [providers.anthropic] (1 s).
  { id: "main", provider: "anthropic" },
  // A long idle timeout, a short turn deadline: the deadline ends a stalled turn.
  { id: "deadline", provider: "anthropic", idle_timeout_ms: 3_600_000, turn_timeout_ms: 1000 },
  // Neither fires during a test: only the client can end its turn.
  { id: "patient", provider: "anthropic", idle_timeout_ms: 3_600_000, turn_timeout_ms: 3_600_000 },
];
const BINDINGS: FileConfig["bindings"] = [
  { agent: "deadline", peer: "deadline" },
  { agent: "patient", peer: "patient" },
  { agent: "patient", peer: "keyed" },
];

const sawRequest = (emulator: Emulator, marker: string) =>
  waitUntil(() => emulator.requests.some((r) => JSON.stringify(r.body).includes(marker)), 15_000, `request ${marker}`);
const abandoned = (emulator: Emulator, marker: string) => emulator.waitForAbandoned((r) => JSON.stringify(r.body).includes(marker));

describe("a hung provider, WebSocket clients", () => {
  let emulator: Emulator;
  let gateway: GatewayHandle;
  let dir: string;
  beforeAll(async () => {
    emulator = await startEmulator();
    dir = mkdtempSync(join(tmpdir(), "exoclaw-stall-"));
    const config: FileConfig = { providers: { anthropic: { idle_timeout_ms: 1000 } }, agents: AGENTS, bindings: BINDINGS };
    writeFileSync(join(dir, "exoclaw.toml"), stringify(config));
    gateway = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url }, ["--config", join(dir, "exoclaw.toml")]);
    // The first model call loads the SDK and fetch: done here, not inside a short idle timeout.
    const warm = await RpcClient.connect(gateway.url);
    expect((await warm.call("chat.send", { content: "ping", peer: "warm" })).response.msg.result.text).toBe("pong");
    warm.close();
  });
  afterAll(async () => {
    await gateway?.stop();
    await emulator?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("(a) a stream that stalls after its first events ends with the idle-timeout error; the message queued behind it is answered", async () => {
    const client = await RpcClient.connect(gateway.url);
    const stalled = client.call("chat.send", { content: "STALL_AFTER_HEADERS mark-a", peer: "a" });
    const next = client.call("chat.send", { content: "ping", peer: "a" });
    const { response, events } = await stalled;
    expect(response.msg.error).toEqual({
      code: -32000,
      message: "provider anthropic stopped sending: no stream event for 1 s (idle_timeout_ms)",
      data: { reason: "idle_timeout", idleTimeoutMs: 1000 },
    });
    expect(events.at(-1)!.msg.params.data).toEqual({ code: -32000, message: response.msg.error.message });
    await abandoned(emulator, "mark-a");
    expect((await next).response.msg.result.text).toBe("pong");
    client.close();
  });

  it("(a') a provider that never sends its headers ends the same way", async () => {
    const client = await RpcClient.connect(gateway.url);
    const { response } = await client.call("chat.send", { content: "STALL_BEFORE_HEADERS mark-a2", peer: "a2" });
    expect(response.msg.error.data).toEqual({ reason: "idle_timeout", idleTimeoutMs: 1000 });
    await abandoned(emulator, "mark-a2");
    expect((await client.call("chat.send", { content: "ping", peer: "a2" })).response.msg.result.text).toBe("pong");
    client.close();
  });

  it("(b) the turn deadline ends a turn the idle timeout does not", async () => {
    const client = await RpcClient.connect(gateway.url);
    const stalled = client.call("chat.send", { content: "STALL_AFTER_HEADERS mark-b", peer: "deadline" });
    const next = client.call("chat.send", { content: "ping", peer: "deadline" });
    const { response, events } = await stalled;
    expect(response.msg.error).toEqual({
      code: -32006,
      message: "turn stopped: the turn deadline of 1 s (turn_timeout_ms) passed",
      data: { reason: "turn_timeout", turnTimeoutMs: 1000 },
    });
    expect(events.at(-1)!.msg.params).toMatchObject({ type: "error", data: { code: -32006 } });
    await abandoned(emulator, "mark-b");
    expect((await next).response.msg.result.text).toBe("pong");
    const history = await client.call("chat.history", { sessionKey: "agent:deadline:ws:default:deadline" });
    expect(history.response.msg.result.events.filter((e: { kind: string }) => e.kind === "error").map((e: { data: unknown }) => e.data)).toEqual([
      { code: -32006, message: "turn stopped: the turn deadline of 1 s (turn_timeout_ms) passed" },
    ]);
    client.close();
  });

  it("(c) a client that disconnects mid-turn cancels its turn: the provider request is aborted, the session records an error and stays usable", async () => {
    const sender = await RpcClient.connect(gateway.url);
    const turn = sender.call("chat.send", { content: "STALL_AFTER_HEADERS mark-c", peer: "patient" });
    turn.catch(() => {});
    // The first event arrived: the turn is mid-stream when the client goes.
    const first = await sender.waitFor((r) => r.msg.method === "chat.event" && r.msg.params.type === "text");
    const sessionKey = first.msg.params.sessionKey as string;
    sender.close();
    await abandoned(emulator, "mark-c");
    const watcher = await RpcClient.connect(gateway.url);
    let errors: { data: unknown }[] = [];
    for (let tries = 0; errors.length === 0 && tries < 300; tries++) {
      if (tries > 0) await new Promise((r) => setTimeout(r, 50));
      const h = await watcher.call("chat.history", { sessionKey });
      errors = h.response.msg.result.events.filter((e: { kind: string }) => e.kind === "error");
    }
    expect(errors.map((e) => e.data)).toEqual([{ code: -32006, message: "turn aborted: the client that sent it disconnected" }]);
    expect((await watcher.call("chat.send", { content: "ping", peer: "patient" })).response.msg.result.text).toBe("pong");
    watcher.close();
  });

  it("(c') a turn with an idempotency key outlives its connection: the client reconnects and repeats the key for the answer", async () => {
    const sender = await RpcClient.connect(gateway.url);
    const turn = sender.call("chat.send", { content: "SLOW_50MS mark-keyed one two three four five six", peer: "keyed", idempotencyKey: "stall-keyed-1" });
    turn.catch(() => {});
    await sender.waitFor((r) => r.msg.method === "chat.event" && r.msg.params.type === "text");
    sender.close();
    const again = await RpcClient.connect(gateway.url);
    const { response } = await again.call("chat.send", {
      content: "SLOW_50MS mark-keyed one two three four five six",
      peer: "keyed",
      idempotencyKey: "stall-keyed-1",
    });
    expect(response.msg.result).toMatchObject({ text: "You said: SLOW_50MS mark-keyed one two three four five six", replayed: true });
    expect(emulator.abandoned.filter((r) => JSON.stringify(r.body).includes("mark-keyed"))).toEqual([]);
    again.close();
  });
});

describe("a hung provider, webhook channel", () => {
  const SECRET = "test-webhook-secret-0123456789";
  let platform: FakePlatform;
  let gw: ChannelGateway;
  beforeAll(async () => {
    platform = await startFakePlatform();
    gw = await startChannelGateway({
      config: {
        providers: { anthropic: { idle_timeout_ms: 2000 } },
        channels: { webhook: { allow: ["alice", "bob"] } },
        plugins: {
          grants: {
            webhook: webhookGrant(`${platform.url}/inbox`),
          },
        },
      },
      env: { TEST_WEBHOOK_SECRET: SECRET },
    });
    // The first model call loads the SDK and fetch: done here, not inside the idle timeout.
    expect((await post({ peer: "alice", content: "ping", messageId: "warm" })).status).toBe(200);
    await platform.waitFor((r) => r.json?.replyTo === "warm", 20_000);
  });
  afterAll(async () => {
    await gw?.stop();
    await platform?.close();
  });
  const post = (body: object) => {
    const text = JSON.stringify(body);
    return gw.postWebhook("webhook", undefined, text, { "content-type": "application/json", "x-exoclaw-signature": `sha256=${hmacSha256Hex(SECRET, text)}` });
  };

  it("(d) a webhook turn runs to completion whatever WebSocket clients do, and a stalled one ends with a failure notice", async () => {
    // A WebSocket client watching, then leaving, has nothing to do with the channel's turn.
    const bystander = await RpcClient.connect(`ws://127.0.0.1:${gw.port}/ws`);
    expect((await post({ peer: "alice", content: "SLOW_50MS mark-d one two three four five six", messageId: "d1" })).status).toBe(200);
    await sawRequest(gw.emulator, "mark-d");
    bystander.close();
    const reply = await platform.waitFor((r) => r.json?.replyTo === "d1", 20_000);
    expect(reply.json.content).toBe("You said: SLOW_50MS mark-d one two three four five six");
    expect(gw.emulator.abandoned.filter((r) => JSON.stringify(r.body).includes("mark-d"))).toEqual([]);

    expect((await post({ peer: "bob", content: "STALL_AFTER_HEADERS mark-d2", messageId: "d2" })).status).toBe(200);
    const notice = await platform.waitFor((r) => r.json?.replyTo === "d2", 20_000);
    expect(notice.json.content).toBe(
      "Sorry, your message could not be answered: provider anthropic stopped sending: no stream event for 2 s (idle_timeout_ms)",
    );
    expect((await post({ peer: "bob", content: "ping", messageId: "d3" })).status).toBe(200);
    expect((await platform.waitFor((r) => r.json?.replyTo === "d3", 20_000)).json.content).toBe("pong");
  });
});
