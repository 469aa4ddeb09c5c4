// Turn control against the real gateway process, real WebSocket clients, the provider emulator
// and real WASM plugins: `chat.abort` mid-stream and mid-tool-call (a plugin that spins), loop
// detection (`loop_limit`), queue mode `steer`, and a channel peer's `/stop` (webhook channel).
// After each, the session's log is read back: the stopped turn is closed (every tool call has
// its result, then one `error` event), contributes nothing to the next turn's model input, and
// the session answers its next message. Nothing is timed.
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
import { fixture } from "../plugins/sandbox/support.js";

type Ev = { kind: string; runId?: string; data: Record<string, unknown> };

const AGENTS: FileConfig["agents"] = [
  // Nothing but the client ends a turn here (no deadline, no idle timeout during a test).
  { id: "main", provider: "anthropic", idle_timeout_ms: 3_600_000, turn_timeout_ms: 3_600_000 },
  { id: "noloop", provider: "anthropic", loop_limit: 0, max_iterations: 5 },
  { id: "steer", provider: "anthropic", queue: { mode: "steer" } },
];
const BINDINGS: FileConfig["bindings"] = [
  { agent: "noloop", peer: "noloop" },
  { agent: "steer", peer: "steer" },
];

const BOB_TOKEN = "bob-token-0123456789abcdef";
const bodyHas = (marker: string) => (r: { body: unknown }) => JSON.stringify(r.body).includes(marker);

describe("turn control, WebSocket clients", () => {
  let emulator: Emulator;
  let gateway: GatewayHandle;
  let dir: string;
  let client: RpcClient;
  beforeAll(async () => {
    emulator = await startEmulator();
    dir = mkdtempSync(join(tmpdir(), "exoclaw-turnctl-"));
    writeFileSync(join(dir, "hostile.wasm"), await fixture("hostile"));
    // hostile's `loop` spins until stopped: a long CPU budget, so only the abort ends it.
    const config = {
      agents: AGENTS,
      bindings: BINDINGS,
      plugins: { limits: { hostile: { timeout_ms: 600_000 } } },
      // Another client (its own account, scope chat): it may not stop this client's turns.
      gateway: { clients: [{ name: "bob", token: BOB_TOKEN, scopes: ["chat"] }] },
    } as FileConfig;
    writeFileSync(join(dir, "exoclaw.toml"), stringify(config));
    gateway = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url }, [
      "--plugins-dir",
      dir,
      "--config",
      join(dir, "exoclaw.toml"),
    ]);
    client = await RpcClient.connect(gateway.url);
    expect((await client.call("chat.send", { content: "ping", peer: "warm" })).response.msg.result.text).toBe("pong");
    // A warm hostile instance: the aborted call below is running, not waiting for a worker to start.
    expect((await client.call("chat.send", { content: "use:count", peer: "warm" })).response.msg.result.text).toMatch(/^The answer is/);
  });
  afterAll(async () => {
    client?.close();
    await gateway?.stop();
    await emulator?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const history = async (sessionKey: string): Promise<Ev[]> => (await client.call("chat.history", { sessionKey })).response.msg.result.events;
  const ofRun = (events: Ev[], runId: string) => events.filter((e) => e.runId === runId).map((e) => e.kind);

  it("chat.abort {sessionKey} mid-stream: the provider request is closed, the client gets the aborted outcome, the log is closed, the next turn works without it", async () => {
    const sender = await RpcClient.connect(gateway.url);
    const turn = sender.call("chat.send", { content: "SLOW_200MS mark-abort1 one two three four five six seven eight nine ten", peer: "a1" });
    const first = await sender.waitFor((r) => r.msg.method === "chat.event" && r.msg.params.type === "text");
    const { runId, sessionKey } = first.msg.params as { runId: string; sessionKey: string };
    // Another connection of the same identity stops it.
    const abort = await client.call("chat.abort", { sessionKey });
    expect(abort.response.msg.result).toEqual({ aborted: [runId] });
    const { response, events } = await turn;
    expect(response.msg.error).toEqual({ code: -32006, message: "turn stopped by chat.abort", data: { reason: "stopped", by: "chat.abort" } });
    expect(events.at(-1)!.msg.params).toMatchObject({ type: "error", data: { code: -32006, message: "turn stopped by chat.abort" } });
    await emulator.waitForAbandoned(bodyHas("mark-abort1"));
    // The log: the partial text, then the error; no turn_ended.
    const log = await history(sessionKey);
    expect(ofRun(log, runId)).toEqual(["message_received", "turn_started", "assistant_text", "error"]);
    expect(log.at(-1)!.data).toEqual({ code: -32006, message: "turn stopped by chat.abort" });
    // Nothing left to stop.
    expect((await client.call("chat.abort", { sessionKey })).response.msg.result).toEqual({ aborted: [] });
    // The next turn runs, and its model input does not hold the stopped turn.
    emulator.reset();
    expect((await sender.call("chat.send", { content: "ping", peer: "a1" })).response.msg.result.text).toBe("pong");
    const ping = emulator.requests.filter(bodyHas("ping")).at(-1)!;
    expect(JSON.stringify(ping.body)).not.toContain("mark-abort1");
    sender.close();
  });

  it("chat.abort {runId} mid-tool-call: the spinning plugin call is cancelled, its tool_use gets a result in the log, the session goes on", async () => {
    const sender = await RpcClient.connect(gateway.url);
    const turn = sender.call("chat.send", { content: "use:loop", peer: "a2" });
    const use = await sender.waitFor((r) => r.msg.method === "chat.event" && r.msg.params.type === "tool_use");
    const { runId, sessionKey } = use.msg.params as { runId: string; sessionKey: string };
    const toolUseId = (use.msg.params.data as { id: string }).id;
    // The model call's usage comes after its stream ended, right before its tool calls start.
    await sender.waitFor((r) => r.msg.method === "chat.event" && r.msg.params.type === "usage");
    expect((await client.call("chat.abort", { runId })).response.msg.result).toEqual({ aborted: [runId] });
    const { response } = await turn;
    expect(response.msg.error).toMatchObject({ code: -32006, data: { reason: "stopped", by: "chat.abort" } });
    // The plugin host stopped the running instance.
    await waitUntil(
      () => gateway.logs.some((l) => l.msg === "plugin call aborted by the caller; instance replaced" && l.plugin === "hostile"),
      15_000,
      "plugin abort log",
    );
    const log = await history(sessionKey);
    expect(ofRun(log, runId)).toEqual(["message_received", "turn_started", "tool_use", "usage", "tool_result", "error"]);
    expect(log.find((e) => e.kind === "tool_result")!.data).toEqual({
      toolUseId,
      content: "not run to the end: turn stopped by chat.abort",
      isError: true,
    });
    expect((await client.call("chat.send", { content: "what is 6 * 7?", peer: "a2" })).response.msg.result.text).toBe("The answer is 42.");
    sender.close();
  });

  it("chat.abort: bad params name the field; another client's session is refused (the turn runs on); an unknown run stops nothing", async () => {
    const both = await client.call("chat.abort", { runId: "r", sessionKey: "agent:main:ws:default:x" });
    expect(both.response.msg.error).toMatchObject({ code: -32602 });
    expect(both.response.msg.error.message).toContain("exactly one of runId and sessionKey");
    expect((await client.call("chat.abort", {})).response.msg.error).toMatchObject({ code: -32602 });
    expect((await client.call("chat.abort", { runId: "no-such-run" })).response.msg.result).toEqual({ aborted: [] });

    const sender = await RpcClient.connect(gateway.url);
    const bob = await RpcClient.connect(gateway.url, { authorization: `Bearer ${BOB_TOKEN}` });
    const turn = sender.call("chat.send", { content: "SLOW_100MS mark-owned one two three four", peer: "a3" });
    const first = await sender.waitFor((r) => r.msg.method === "chat.event" && r.msg.params.type === "text");
    const { runId, sessionKey } = first.msg.params as { runId: string; sessionKey: string };
    expect((await bob.call("chat.abort", { sessionKey })).response.msg.error).toMatchObject({ code: -32010, data: { scope: "admin" } });
    expect((await bob.call("chat.abort", { runId })).response.msg.error).toMatchObject({ code: -32010, data: { scope: "admin" } });
    expect((await turn).response.msg.result.text).toBe("You said: SLOW_100MS mark-owned one two three four");
    bob.close();
    sender.close();
  });

  it("chat.abort {runId} of a queued message closes that message only; the running turn goes on", async () => {
    const sender = await RpcClient.connect(gateway.url);
    const a = sender.call("chat.send", { content: "SLOW_100MS mark-running one two three four five", peer: "a4" });
    const first = await sender.waitFor((r) => r.msg.method === "chat.event" && r.msg.params.type === "text");
    const { sessionKey } = first.msg.params as { sessionKey: string };
    const b = sender.call("chat.send", { content: "mark-queued", peer: "a4" });
    let queued: Ev | undefined;
    for (let tries = 0; queued === undefined && tries < 300; tries++) {
      if (tries > 0) await new Promise((r) => setTimeout(r, 20));
      queued = (await history(sessionKey)).find((e) => e.kind === "message_received" && e.data.content === "mark-queued");
    }
    if (queued === undefined) throw new Error("the queued message was not journaled");
    expect((await client.call("chat.abort", { runId: queued.runId })).response.msg.result).toEqual({ aborted: [queued.runId] });
    expect((await b).response.msg.error).toMatchObject({ code: -32006, data: { reason: "stopped", by: "chat.abort" } });
    expect((await a).response.msg.result.text).toBe("You said: SLOW_100MS mark-running one two three four five");
    expect(ofRun(await history(sessionKey), queued.runId!)).toEqual(["message_received", "error"]);
    expect(emulator.requests.filter(bodyHas("mark-queued"))).toEqual([]);
    sender.close();
  });

  it("loop detection: the same tool call loop_limit (3) times ends the turn with a clear error; loop_limit 0 leaves it to max_iterations", async () => {
    const { response, events } = await client.call("chat.send", { content: "LOOP_FOREVER", peer: "loop" });
    expect(response.msg.error).toEqual({
      code: -32002,
      message: "turn stopped: the model asked for the same calculator call 3 times in this turn (loop_limit)",
      data: { reason: "tool_loop", tool: "calculator", repeats: 3 },
    });
    expect(events.at(-1)!.msg.params).toMatchObject({ type: "error", data: { code: -32002 } });
    // Two calls ran; the third was not run (its tool_use is closed in the log with the error).
    expect(events.filter((e) => e.msg.params?.type === "tool_result")).toHaveLength(2);
    const runId = events[0]!.msg.params.runId as string;
    const log = await history("agent:main:ws:default:loop");
    expect(ofRun(log, runId)).toEqual([
      "message_received",
      "turn_started",
      "tool_use",
      "usage",
      "tool_result",
      "tool_use",
      "usage",
      "tool_result",
      "tool_use",
      "usage",
      "tool_result",
      "error",
    ]);
    expect((await client.call("chat.send", { content: "ping", peer: "loop" })).response.msg.result.text).toBe("pong");

    const off = await client.call("chat.send", { content: "LOOP_FOREVER", peer: "noloop" });
    expect(off.response.msg.error).toMatchObject({ code: -32002 });
    expect(off.response.msg.error.message).toContain("max_iterations");
  });

  it("queue mode steer: a message sent mid-turn joins the running turn at its next model call; the log projects it where the model saw it", async () => {
    const sender = await RpcClient.connect(gateway.url);
    const a = sender.call("chat.send", { content: "SLOW_150MS what is 6 * 7?", peer: "steer" });
    await sender.waitFor((r) => r.msg.method === "chat.event" && r.msg.params.type === "text");
    const b = client.call("chat.send", { content: "steer-marker-b and be brief", peer: "steer" });
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.response.msg.result.text).toBe("The answer is 42.");
    // B was answered by A's run.
    expect(rb.response.msg.result).toMatchObject({ runId: ra.response.msg.result.runId, text: "The answer is 42." });
    // The model call after the tool round carried B after the tool result.
    const second = emulator.requests.find(bodyHas("steer-marker-b"))!;
    const msgs = (second.body as { messages: { role: string; content: { type: string; text?: string }[] }[] }).messages;
    expect(msgs.at(-1)!.content.map((c) => c.type)).toEqual(["tool_result", "text"]);
    expect(msgs.at(-1)!.content[1]!.text).toBe("steer-marker-b and be brief");
    // The next turn's input: A, the tool call, the result with B, the answer, then the new message.
    const { response } = await client.call("chat.send", { content: "steer-next", peer: "steer" });
    expect(response.msg.result.text).toBe("You said: steer-next");
    const next = emulator.requests.find(bodyHas("steer-next"))!;
    const shape = (next.body as { messages: { role: string; content: string | { type: string; text?: string }[] }[] }).messages.map(
      (m) => `${m.role}:${typeof m.content === "string" ? "text" : m.content.map((c) => c.type).join("+")}`,
    );
    expect(shape.slice(-5)).toEqual(["user:text", "assistant:text+tool_use", "user:tool_result+text", "assistant:text", "user:text"]);
    // The log: B's turn_started names A's run, and B ends with it.
    const log = await history("agent:steer:ws:default:steer");
    const bRun = log.find((e) => e.kind === "message_received" && e.data.content === "steer-marker-b and be brief")!.runId!;
    expect(log.filter((e) => e.runId === bRun).map((e) => [e.kind, e.data.runId ?? null])).toEqual([
      ["message_received", null],
      ["turn_started", ra.response.msg.result.runId],
      ["turn_ended", ra.response.msg.result.runId],
    ]);
    sender.close();
  });
});

describe("turn control, a webhook channel peer's /stop", () => {
  const SECRET = "test-webhook-secret-0123456789";
  let platform: FakePlatform;
  let gw: ChannelGateway;
  beforeAll(async () => {
    platform = await startFakePlatform();
    gw = await startChannelGateway({
      config: { channels: { webhook: { allow: ["alice"] } }, plugins: { grants: { webhook: webhookGrant(`${platform.url}/inbox`) } } },
      env: { TEST_WEBHOOK_SECRET: SECRET },
    });
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

  it("/stop cancels the peer's running turn, is answered, is never a turn; the stopped message gets no failure notice; the next message is answered", async () => {
    expect((await post({ peer: "alice", content: "SLOW_200MS mark-stop one two three four five six seven eight nine ten", messageId: "s1" })).status).toBe(200);
    await waitUntil(() => gw.emulator.requests.some(bodyHas("mark-stop")), 15_000, "request mark-stop");
    expect((await post({ peer: "alice", content: " /STOP ", messageId: "s2" })).status).toBe(200);
    expect((await platform.waitFor((r) => r.json?.replyTo === "s2", 20_000)).json.content).toBe("Stopped.");
    await gw.emulator.waitForAbandoned(bodyHas("mark-stop"));
    expect((await post({ peer: "alice", content: "ping", messageId: "s3" })).status).toBe(200);
    expect((await platform.waitFor((r) => r.json?.replyTo === "s3", 20_000)).json.content).toBe("pong");
    // Replies go out in order per peer: had s1 got a notice, it would be here by now.
    expect(platform.requests.filter((r) => r.json?.replyTo === "s1")).toEqual([]);
    // With nothing running, /stop says so.
    expect((await post({ peer: "alice", content: "/stop", messageId: "s4" })).status).toBe(200);
    expect((await platform.waitFor((r) => r.json?.replyTo === "s4", 20_000)).json.content).toBe("Nothing to stop.");
    // The log: the stopped turn closed with the error; /stop itself is no message.
    const admin = await RpcClient.connect(`ws://127.0.0.1:${gw.port}/ws`);
    const sessions = (await admin.call("sessions.list", { channel: "webhook" })).response.msg.result.sessions as { sessionKey: string }[];
    const events = (await admin.call("chat.history", { sessionKey: sessions[0]!.sessionKey })).response.msg.result.events as Ev[];
    expect(events.filter((e) => e.kind === "message_received").map((e) => e.data.content)).toEqual([
      "ping",
      "SLOW_200MS mark-stop one two three four five six seven eight nine ten",
      "ping",
    ]);
    expect(events.filter((e) => e.kind === "error").map((e) => e.data)).toEqual([{ code: -32006, message: "turn stopped by /stop" }]);
    admin.close();
  });
});
