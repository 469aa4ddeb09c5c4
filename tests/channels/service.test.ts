// The channels service on the real agent runtime (memory session log, real provider adapters
// against the emulator) and the real router. The channel plugin is a TypeScript stand-in at the
// ChannelPlugins boundary (the Wasm side is covered end to end in tests/e2e/channel-webhook.test.ts),
// so each check can feed exactly the malformed or hostile output it is about.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createChannelService, type ChannelPlugins, type ChannelService, type WebhookHttpRequest } from "../../host/src/channels/service.js";
import { cursorPath } from "../../host/src/channels/cursor.js";
import { limitViolation, normalizeInbound } from "../../host/src/channels/messages.js";
import { CHANNEL_DEFAULTS, type ChannelConfig } from "../../host/src/config/types.js";
import { compileRouter } from "../../host/src/router/index.js";
import { createMemorySessionLog, type SessionLog } from "../../host/src/store/index.js";
import { ChannelPluginError } from "../../host/src/plugins/index.js";
import { MemoryService, NoteStore } from "../../host/src/agent/index.js";
import { silentLogger } from "../../host/src/log/index.js";
import { agentConfig, lastUserText, makeRuntime, recordingLogger, until } from "../agent/support.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
});

/** A stand-in channel plugin: `parse` returns the queued result; `send` records (and can fail). */
function fakePlugin() {
  const state = {
    parseResult: { response: { status: 200, body: "ok" }, messages: [] as unknown[] } as unknown,
    polls: [] as unknown[],
    sent: [] as Record<string, unknown>[],
    sendFailures: 0,
    /** Sends to fail with a permanent error (the SDK's `channelPermanentError`). */
    permanentFailures: 0,
    loaded: true,
    pollCalls: [] as unknown[],
    /** Whether the plugin exports `send_file` (older plugins do not). */
    sendFile: false,
    files: [] as Record<string, unknown>[],
  };
  const plugins: ChannelPlugins = {
    channelPlugins: () =>
      state.loaded ? [{ name: "fake", exports: { poll: true, ...(state.sendFile ? { sendFile: true } : {}) }, signatureHeaders: [] }] : [],
    async callChannel(_plugin, fn, input) {
      if (fn === "parse") return state.parseResult;
      if (fn === "send_file") {
        if (state.permanentFailures > 0) {
          state.permanentFailures--;
          throw new ChannelPluginError("fake", "send_file", "plugin_error", "permanent: the platform refused the file type");
        }
        if (state.sendFailures > 0) {
          state.sendFailures--;
          throw new Error("channel plugin 'fake' failed (export 'send_file'): platform said 502");
        }
        state.files.push(input as Record<string, unknown>);
        return { platformMessageId: `file-${state.files.length}` };
      }
      if (fn === "send") {
        if (state.permanentFailures > 0) {
          state.permanentFailures--;
          throw new ChannelPluginError("fake", "send", "plugin_error", "permanent: POST https://platform answered 400: bad peer");
        }
        if (state.sendFailures > 0) {
          state.sendFailures--;
          throw new Error("channel plugin 'fake' failed (export 'send'): platform said 502");
        }
        state.sent.push(input as Record<string, unknown>);
        return { platformMessageId: `out-${state.sent.length}` };
      }
      state.pollCalls.push(input);
      const next = state.polls.shift();
      if (next instanceof Error) throw next;
      return next ?? { messages: [] };
    },
  };
  return { state, plugins };
}

function channel(over: Partial<ChannelConfig> = {}): ChannelConfig {
  return {
    name: "chat",
    plugin: "fake",
    allow: ["alice", "bob", "team:T1"],
    accounts: ["default"],
    maxMessageBytes: CHANNEL_DEFAULTS.maxMessageBytes,
    maxAttachments: CHANNEL_DEFAULTS.maxAttachments,
    maxBodyBytes: CHANNEL_DEFAULTS.maxBodyBytes,
    ...over,
  };
}

const msg = (peer: string, content: string, id: string, extra: Record<string, unknown> = {}) => ({
  peer,
  peerKind: "direct",
  content,
  attachments: [],
  platformMessageId: id,
  ...extra,
});

const request = (over: Partial<WebhookHttpRequest> = {}): WebhookHttpRequest => ({
  channel: "chat",
  account: "default",
  method: "POST",
  path: "",
  query: "",
  headers: {},
  body: new Uint8Array(),
  remoteAddress: "127.0.0.1",
  ...over,
});

let stateDir: string;
let service: ChannelService | undefined;
beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), "exoclaw-channels-unit-"));
  emulator.reset();
});
afterEach(async () => {
  await service?.stop();
  service = undefined;
  rmSync(stateDir, { recursive: true, force: true });
});

function setup(over: Partial<ChannelConfig> = {}, log: SessionLog = createMemorySessionLog()) {
  const fake = fakePlugin();
  const logger = recordingLogger();
  const { runtime } = makeRuntime(emulator, [agentConfig()], {}, log);
  const router = compileRouter([], ["main"], "main");
  service = createChannelService({
    channels: [channel(over)],
    plugins: fake.plugins,
    router,
    runtime,
    stateDir,
    logger,
    sendBackoffMs: [5, 5, 5],
    replyBackoffMs: [5, 10],
    replies: log,
  });
  return { ...fake, logger, runtime, log, service };
}

describe("configuration warnings", () => {
  it("names a channel whose plugin declares no signature headers, and one whose plugin is not loaded", () => {
    const { state, service } = setup();
    expect(service.check()).toEqual([expect.stringMatching(/^channel "chat": plugin "fake" declares no signature_headers/)]);
    state.loaded = false;
    expect(service.check()).toEqual([expect.stringMatching(/^channel "chat": plugin "fake" is not loaded/)]);
  });
});

describe("stream = edit with a plugin that does not export edit", () => {
  it("is named by check() and answers once at the end, through send (old plugins keep working)", async () => {
    const { state, service } = setup({ stream: { mode: "edit", intervalMs: 250, perAccount: {} } });
    expect(service.check()).toContainEqual(expect.stringMatching(/^channel "chat": stream = "edit" is configured but plugin "fake" does not export "edit"/));
    state.parseResult = { response: { status: 200 }, messages: [msg("alice", "slow hello SLOW_50MS a b c d e f g h", "se1")] };
    await service.handleWebhook(request());
    await until(() => state.sent.length === 1, 15_000, "reply");
    await new Promise((r) => setTimeout(r, 300));
    expect(state.sent).toHaveLength(1);
    expect(state.sent[0]!.content).toBe("You said: slow hello SLOW_50MS a b c d e f g h");
    // No edit was asked of the plugin (the stand-in would have taken it for a poll).
    expect(state.pollCalls).toEqual([]);
  });
});

describe("webhook policy", () => {
  it("gives the gateway the body limit, the accounts and the plugin's signature headers (undefined while not loaded)", () => {
    const { state, service } = setup({ accounts: ["default", "bot2"], maxBodyBytes: 4096 });
    expect(service.webhookPolicy("chat")).toEqual({ maxBodyBytes: 4096, accounts: ["default", "bot2"], signatureHeaders: [] });
    expect(service.webhookPolicy("nope")).toBeUndefined();
    state.loaded = false;
    expect(service.webhookPolicy("chat")!.signatureHeaders).toBeUndefined();
  });

  it("counts intake refusals per channel", () => {
    const { service } = setup();
    for (const reason of ["unknownAccount", "missingSignature", "throttled", "overloaded", "throttled"] as const) {
      service.intakeRefused({ channel: "chat", account: "default", reason, remoteAddress: "127.0.0.1" });
    }
    expect(service.counters().chat).toMatchObject({ unknownAccount: 1, missingSignature: 1, throttled: 2, overloaded: 1 });
  });
});

describe("message checks", () => {
  it("normalizes a well-formed message and fills defaults", () => {
    expect(normalizeInbound({ peer: "p", content: "hi", platformMessageId: "1", attachments: null, thread: "", guild: null }, "acct")).toEqual({
      account: "acct",
      peer: "p",
      peerKind: "direct",
      content: "hi",
      attachments: [],
      platformMessageId: "1",
    });
  });

  it.each([
    [null, "message is not a map"],
    [{ content: "x", platformMessageId: "1" }, "field 'peer' is missing or empty"],
    [{ peer: "", content: "x", platformMessageId: "1" }, "field 'peer' is missing or empty"],
    [{ peer: 7, content: "x", platformMessageId: "1" }, "field 'peer' is not a string"],
    [{ peer: "p", content: "x" }, "field 'platformMessageId' is missing or empty"],
    [{ peer: "p", content: 3, platformMessageId: "1" }, "field 'content' is not a string"],
    [{ peer: "p", content: "x", platformMessageId: "1", attachments: "a" }, "field 'attachments' is not an array"],
    [{ peer: "p", content: "x", platformMessageId: "1", attachments: [{}] }, "attachments[0].kind"],
    [{ peer: "p", content: "x", platformMessageId: "1", peerKind: "room" }, "field 'peerKind' is not one of"],
    [{ peer: "p".repeat(513), content: "x", platformMessageId: "1" }, "longer than 512"],
  ])("rejects %o: %s", (value, reason) => {
    expect(normalizeInbound(value, "default")).toContain(reason);
  });

  it("names the limit a message is over", () => {
    const base = normalizeInbound(msg("p", "é".repeat(10), "1"), "d");
    if (typeof base === "string") throw new Error(base);
    expect(limitViolation(base, { maxMessageBytes: 20, maxAttachments: 1 })).toBeNull();
    expect(limitViolation(base, { maxMessageBytes: 19, maxAttachments: 1 })).toBe(
      "Your message is too long (20 bytes); the limit is 19 bytes. It was not passed on.",
    );
    expect(limitViolation({ ...base, attachments: [{ kind: "image" }, { kind: "file" }] }, { maxMessageBytes: 100, maxAttachments: 1 })).toMatch(
      /has 2 attachments; the limit is 1/,
    );
  });
});

describe("channels service", () => {
  it("answers an allowed peer: journaled before the HTTP answer, reply sent in the thread", async () => {
    const { state, service, log } = setup();
    state.parseResult = {
      response: { status: 200, headers: { "x-ok": "1", "content-length": "999" }, body: "thanks" },
      messages: [msg("alice", "hello", "m1", { thread: "t9" })],
    };
    const answer = await service.handleWebhook(request());
    expect(answer).toEqual({ status: 200, headers: { "x-ok": "1" }, body: "thanks" });
    // The HTTP answer came after the message was journaled.
    const key = "agent:main:chat:default:alice";
    expect((await log.read(key)).some((e) => e.kind === "message_received")).toBe(true);
    await until(() => state.sent.length === 1, 15_000, "reply");
    expect(state.sent[0]).toEqual({
      account: "default",
      peer: "alice",
      replyId: "channel:chat:default:m1:reply",
      thread: "t9",
      content: "You said: hello",
      replyTo: "m1",
    });
    expect(service.counters().chat).toMatchObject({ received: 1, accepted: 1, refused: 0, answered: 1 });
  });

  it("drops a stranger before the agent, with the configured refusal", async () => {
    const { state, service, logger } = setup({ refusal: "This bot is private." });
    state.parseResult = { response: { status: 200 }, messages: [msg("mallory", "hello", "s1")] };
    expect((await service.handleWebhook(request())).status).toBe(200);
    await until(() => state.sent.length === 1, 5000, "refusal");
    expect(state.sent[0]).toMatchObject({ peer: "mallory", content: "This bot is private.", replyTo: "s1" });
    expect(emulator.requests).toHaveLength(0);
    expect(logger.lines.find((l) => l.level === "warn" && /not in the channel allowlist/.test(l.msg))?.obj).toMatchObject({
      channel: "chat",
      account: "default",
      peer: "mallory",
    });
    // A redelivery is dropped again but not answered twice.
    await service.handleWebhook(request());
    await new Promise((r) => setTimeout(r, 50));
    expect(state.sent).toHaveLength(1);
    expect(service.counters().chat).toMatchObject({ received: 2, accepted: 0, refused: 2 });
  });

  it("admits a peer through its team entry", async () => {
    const { state, service } = setup();
    state.parseResult = { response: { status: 200 }, messages: [msg("C9", "from slack", "t1", { team: "T1" })] };
    await service.handleWebhook(request());
    await until(() => state.sent.length === 1, 15_000, "reply");
    expect(state.sent[0]!.content).toBe("You said: from slack");
  });

  it("skips malformed messages, counts them, and still serves the good one", async () => {
    const { state, service, logger } = setup();
    state.parseResult = {
      response: { status: 200 },
      messages: [{ peer: "", content: "x", platformMessageId: "1" }, 42, { peer: "alice", content: ["no"], platformMessageId: "2" }, msg("alice", "fine", "3")],
    };
    expect((await service.handleWebhook(request())).status).toBe(200);
    await until(() => state.sent.length === 1, 15_000, "reply");
    expect(state.sent[0]!.content).toBe("You said: fine");
    expect(service.counters().chat).toMatchObject({ received: 4, accepted: 1, refused: 3, malformed: 3 });
    expect(logger.lines.filter((l) => /malformed message/.test(l.msg))).toHaveLength(3);
  });

  it("refuses a message over the limits with a reply naming the limit", async () => {
    const { state, service } = setup({ maxMessageBytes: 10, maxAttachments: 1 });
    state.parseResult = {
      response: { status: 200 },
      messages: [msg("alice", "x".repeat(11), "big"), msg("bob", "pics", "att", { attachments: [{ kind: "image" }, { kind: "image" }] })],
    };
    await service.handleWebhook(request());
    await until(() => state.sent.length === 2, 5000, "refusals");
    expect(state.sent.find((s) => s.peer === "alice")!.content).toMatch(/too long \(11 bytes\); the limit is 10 bytes/);
    expect(state.sent.find((s) => s.peer === "bob")!.content).toMatch(/2 attachments; the limit is 1/);
    expect(emulator.requests).toHaveLength(0);
  });

  it("answers a redelivered platform message id once", async () => {
    const { state, service } = setup();
    state.parseResult = { response: { status: 200 }, messages: [msg("alice", "once", "dup")] };
    await service.handleWebhook(request());
    await until(() => state.sent.length === 1, 15_000, "reply");
    expect((await service.handleWebhook(request())).status).toBe(200);
    await service.idle(5000);
    await new Promise((r) => setTimeout(r, 100));
    expect(state.sent).toHaveLength(1);
    expect(emulator.requests).toHaveLength(1);
    expect(service.counters().chat).toMatchObject({ received: 2, accepted: 2, answered: 1 });
  });

  it("ignores the messages of a 401 (bad signature) and counts it", async () => {
    const { state, service } = setup();
    state.parseResult = { response: { status: 401, body: "bad signature" }, messages: [msg("alice", "forged", "f1")] };
    expect(await service.handleWebhook(request())).toMatchObject({ status: 401, body: "bad signature" });
    await new Promise((r) => setTimeout(r, 100));
    expect(emulator.requests).toHaveLength(0);
    expect(state.sent).toHaveLength(0);
    expect(service.counters().chat).toMatchObject({ received: 0, badSignature: 1 });
  });

  it("answers 404 for an unknown channel, 503 when its plugin is not loaded, 500 for a malformed parse result", async () => {
    const { state, service } = setup();
    expect(await service.handleWebhook(request({ channel: "nope" }))).toMatchObject({ status: 404, body: JSON.stringify({ error: 'unknown channel "nope"' }) });
    state.parseResult = { response: { status: "ok" }, messages: [] };
    expect((await service.handleWebhook(request())).status).toBe(500);
    state.loaded = false;
    const down = await service.handleWebhook(request());
    expect(down.status).toBe(503);
    expect(JSON.parse(String(down.body)).error).toBe('channel "chat": its plugin "fake" is not loaded');
  });

  it("answers 503 when the message cannot be journaled, so the platform redelivers", async () => {
    const log = createMemorySessionLog();
    const { state, service } = setup({}, log);
    await log.close();
    state.parseResult = { response: { status: 200 }, messages: [msg("alice", "lost?", "j1")] };
    const answer = await service.handleWebhook(request());
    expect(answer.status).toBe(503);
    expect(String(answer.body)).toMatch(/redeliver/);
  });

  it("tells the peer when its turn failed, without a stack", async () => {
    const { state, service } = setup();
    state.parseResult = { response: { status: 200 }, messages: [msg("alice", "FAIL_400 please", "e1")] };
    await service.handleWebhook(request());
    await until(() => state.sent.length === 1, 15_000, "failure notice");
    expect(state.sent[0]!.content).toMatch(/^Sorry, your message could not be answered: /);
    expect(state.sent[0]!.content).not.toMatch(/\n|    at /);
  });

  it("retries a transiently failing reply until it goes out (no give-up after 3), and settles its outbox entry", async () => {
    const { state, service, log } = setup();
    state.sendFailures = 8;
    state.parseResult = { response: { status: 200 }, messages: [msg("alice", "retry me", "r1")] };
    await service.handleWebhook(request());
    await until(() => state.sent.length === 1, 15_000, "reply after retries");
    expect(state.sent[0]).toMatchObject({ content: "You said: retry me", replyId: "channel:chat:default:r1:reply" });
    expect(service.counters().chat).toMatchObject({ answered: 1, sendRetries: 8, sendFailures: 0 });
    await service.idle(2000);
    expect(await log.pendingReplies()).toEqual([]);
  });

  it("dead-letters a reply the plugin refuses permanently: logged, counted, settled, not retried", async () => {
    const { state, service, logger, log } = setup();
    state.permanentFailures = 1;
    state.parseResult = { response: { status: 200 }, messages: [msg("alice", "bad", "d1")] };
    await service.handleWebhook(request());
    await until(() => service.counters().chat!.sendFailures === 1, 15_000, "dead letter");
    await service.idle(2000);
    expect(state.sent).toHaveLength(0);
    expect(service.counters().chat!.sendRetries).toBe(0);
    expect(logger.lines.find((l) => l.msg === "channel send failed permanently; reply dead-lettered (not retried)")?.obj).toMatchObject({
      channel: "chat",
      attempts: 1,
      replyId: "channel:chat:default:d1:reply",
      error: expect.stringContaining("permanent: POST https://platform answered 400"),
    });
    expect(await log.pendingReplies()).toEqual([]);
  });

  it("keeps a reply owed in the store until it is sent, and resumeReplies sends it (a new service on the same store)", async () => {
    const log = createMemorySessionLog();
    const first = setup({}, log);
    // The platform is down for longer than this service lives.
    first.state.sendFailures = 1_000;
    first.state.parseResult = { response: { status: 200 }, messages: [msg("alice", "owed", "k1")] };
    await first.service.handleWebhook(request());
    await until(() => first.service.counters().chat!.sendRetries >= 2, 15_000, "retries");
    const owed = await log.pendingReplies();
    expect(owed.map((e) => e.data.idempotencyKey)).toEqual(["channel:chat:default:k1"]);
    await first.service.closeReplies();
    expect(await log.pendingReplies()).toHaveLength(1);
    // A new process on the same store (the platform is back).
    const second = setup({}, log);
    expect(await second.service.resumeReplies()).toBe(1);
    await until(() => second.state.sent.length === 1, 15_000, "resent reply");
    expect(second.state.sent[0]).toMatchObject({ peer: "alice", content: "You said: owed", replyTo: "k1", replyId: "channel:chat:default:k1:reply" });
    await second.service.idle(2000);
    expect(await log.pendingReplies()).toEqual([]);
    expect(emulator.requests.length).toBe(1); // the model was called once
  });

  it("keeps one peer's replies in order while an earlier send is being retried", async () => {
    const fake = fakePlugin();
    const { runtime } = makeRuntime(emulator, [agentConfig()], {}, createMemorySessionLog());
    // A 300 ms backoff: the second turn ends long before the first reply's retry, so without
    // per-peer ordering its reply would overtake the first.
    service = createChannelService({
      channels: [channel()],
      plugins: fake.plugins,
      router: compileRouter([], ["main"], "main"),
      runtime,
      stateDir,
      logger: recordingLogger(),
      replyBackoffMs: [300],
    });
    fake.state.sendFailures = 1;
    fake.state.parseResult = { response: { status: 200 }, messages: [msg("alice", "one", "o1"), msg("alice", "two", "o2")] };
    await service.handleWebhook(request());
    await until(() => fake.state.sent.length === 2, 15_000, "two replies");
    expect(fake.state.sent.map((m) => m.content)).toEqual(["You said: one", "You said: two"]);
  });

  it("send() delivers through the plugin and names an unknown channel", async () => {
    const { state, service } = setup();
    await expect(service.send({ channel: "chat", account: "default", peer: "carol", content: "note" })).resolves.toEqual({ platformMessageId: "out-1" });
    expect(state.sent[0]).toEqual({ account: "default", peer: "carol", content: "note" });
    await expect(service.send({ channel: "nope", account: "default", peer: "x", content: "y" })).rejects.toThrow(
      'unknown channel "nope" (configured channels: chat)',
    );
  });

  it("polls, admits the messages, then persists the cursor; backs off on errors", async () => {
    const { state, service } = setup({ poll: { intervalMs: 20, accounts: ["bot1"] } });
    state.polls.push(new Error("platform down"), { messages: [msg("alice", "polled", "p1")], cursor: "c1" }, { messages: [], cursor: "c2" });
    service.startPolling();
    await until(() => state.sent.length === 1, 20_000, "reply to the polled message");
    expect(state.sent[0]).toMatchObject({ account: "bot1", peer: "alice", content: "You said: polled" });
    const file = cursorPath(stateDir, "chat", "bot1");
    await until(
      () => {
        try {
          return readFileSync(file, "utf8") === "c2";
        } catch {
          return false;
        }
      },
      10_000,
      "cursor c2",
    );
    // Polls after the error carried the cursor the previous poll returned.
    expect(state.pollCalls.slice(0, 3)).toEqual([
      { account: "bot1", cursor: undefined },
      { account: "bot1", cursor: undefined },
      { account: "bot1", cursor: "c1" },
    ]);
    await service.stop();
  });

  it("delivers a recovered turn's reply for its own channels only", async () => {
    const { state, service } = setup();
    const base = { sessionKey: "k", agentId: "main", runId: "r", account: "default", peer: "alice" };
    service.onRecovered({ ...base, channel: "ws", result: { text: "nope", runId: "r" } });
    service.onRecovered({ ...base, channel: "chat", platformMessageId: "m7", result: { text: "late answer", runId: "r" } });
    service.onRecovered({ ...base, channel: "chat", result: { text: "merged", runId: "r", merged: true } });
    service.onRecovered({ ...base, channel: "chat", error: { code: -32006, message: "turn interrupted: the gateway stopped" } });
    await until(() => state.sent.length === 2, 5000, "recovered replies");
    expect(state.sent.map((s) => s.content)).toEqual(["late answer", "Sorry, your message could not be answered: turn interrupted: the gateway stopped"]);
    expect(state.sent[0]).toMatchObject({ replyTo: "m7" });
  });
});

describe("the emulator saw the routed text", () => {
  it("attachments are listed for the agent", async () => {
    const { state, service } = setup();
    state.parseResult = {
      response: { status: 200 },
      messages: [msg("alice", "look", "a1", { attachments: [{ kind: "image", name: "cat.jpg", mime: "image/jpeg", size: 1234 }] })],
    };
    await service.handleWebhook(request());
    await until(() => state.sent.length === 1, 15_000, "reply");
    expect(lastUserText(emulator.requests[0]!)).toBe("look\n[attachments: image cat.jpg (image/jpeg) 1234 bytes]");
  });
});

describe("a group member's sender reaches the agent's memory", () => {
  it("notes written by one member of a group are recalled for that member only", async () => {
    const fake = fakePlugin();
    const log = createMemorySessionLog();
    const notes = await NoteStore.open();
    const memory = new MemoryService({ notes, log, logger: silentLogger() });
    const policy = { budgetTokens: 1024, notes: 20, recall: 5, share: "sender" as const, sessionRecall: true };
    const { runtime } = makeRuntime(emulator, [agentConfig({ memory: policy })], { memory }, log);
    service = createChannelService({
      channels: [channel({ allow: ["*"] })],
      plugins: fake.plugins,
      router: compileRouter([], ["main"], "main"),
      runtime,
      stateDir,
      logger: recordingLogger(),
      sendBackoffMs: [5, 5, 5],
      replyBackoffMs: [5, 10],
      replies: log,
    });
    const say = async (sender: string, content: string, id: string) => {
      fake.state.parseResult = { response: { status: 200 }, messages: [msg("g1", content, id, { peerKind: "group", sender })] };
      const before = fake.state.sent.length;
      await service!.handleWebhook(request());
      await until(() => fake.state.sent.length === before + 1, 15_000, `reply to ${id}`);
    };
    await say("u1", `use:memory ${JSON.stringify({ action: "remember", note: "u1 takes the 8:05 train" })}`, "m1");
    expect(notes.list({}).map((n) => [n.peer, n.sender])).toEqual([["g1", "u1"]]);
    await runtime.resetSession("agent:main:chat:default:g1");
    emulator.reset();
    await say("u2", "which train do I take?", "m2");
    expect(JSON.stringify(emulator.requests[0]!.body.messages)).not.toContain("8:05");
    await say("u1", "which train do I take?", "m3");
    expect(JSON.stringify(emulator.requests[1]!.body.messages)).toContain("u1 takes the 8:05 train");
  });
});

describe("files (send_file)", () => {
  const file = { data: new Uint8Array([1, 2, 3]), mime: "text/plain", name: "a.txt" };

  it("a plugin without the send_file export cannot send files (said by fileSupport and sendFile); one with it gets the channel's limits", async () => {
    const { state, service } = setup();
    expect(service.fileSupport("chat")).toEqual({ ok: false, reason: 'channel "chat": its plugin "fake" cannot send files (no send_file export)' });
    expect(service.fileSupport("nope")).toEqual({ ok: false, reason: 'channel "nope" is not configured' });
    await expect(service.sendFile({ channel: "chat", account: "default", peer: "alice", file })).rejects.toThrow(/no send_file export/);
    expect(state.files).toEqual([]);
    state.sendFile = true;
    expect(service.fileSupport("chat")).toMatchObject({ ok: true, maxBytes: 1024 * 1024 });
  });

  it("sends through send_file without the channel name, retries a transient failure, and does not retry a permanent one", async () => {
    const { state, service } = setup();
    state.sendFile = true;
    state.sendFailures = 1;
    expect(await service.sendFile({ channel: "chat", account: "default", peer: "alice", thread: "t1", file })).toEqual({ platformMessageId: "file-1" });
    expect(state.files).toEqual([{ account: "default", peer: "alice", thread: "t1", file }]);
    state.permanentFailures = 1;
    state.sendFailures = 0;
    await expect(service.sendFile({ channel: "chat", account: "default", peer: "alice", file })).rejects.toThrow(/permanent: the platform refused/);
    expect(state.files).toHaveLength(1);
    expect(state.permanentFailures).toBe(0);
  });
});
