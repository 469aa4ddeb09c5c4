// The channels service with a bus (host/src/channels/bus.ts) on the real in-process bus, the real
// agent runtime (memory session log, provider adapters against the emulator) and the real
// router; the channel plugin is a TypeScript stand-in at the ChannelPlugins boundary, as in
// channels-service.test.ts. Covers the consumer's outcomes one by one: reply once, retries and
// their idempotency keys, dead letters, terms, a turn already handled, a turn left unfinished.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createMemoryBus, inboundSubject, type Bus } from "../../host/src/bus/index.js";
import { DEFAULT_RESILIENCE } from "../../host/src/agent/index.js";
import { inboundMsgId } from "../../host/src/channels/bus.js";
import { createChannelService, type ChannelPlugins, type ChannelService } from "../../host/src/channels/service.js";
import { ChannelPluginError } from "../../host/src/plugins/index.js";
import { compileRouter } from "../../host/src/router/index.js";
import { createMemorySessionLog, type SessionLog } from "../../host/src/store/index.js";
import { DuplicateEventError } from "../../host/src/store/errors.js";
import { agentConfig, makeRuntime, recordingLogger, until } from "../agent/support.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { FAKE_CHANNEL, FAKE_WEBHOOK } from "./support.js";

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
});

function fakePlugin() {
  const state = {
    parseMessages: [] as unknown[],
    sent: [] as Record<string, unknown>[],
    sendFailures: 0,
    permanentFailures: 0,
    parseError: undefined as Error | undefined,
  };
  const plugins: ChannelPlugins = {
    channelPlugins: () => [{ name: "fake", exports: { poll: false }, signatureHeaders: [] }],
    async callChannel(_plugin, fn, input) {
      if (fn === "parse") {
        if (state.parseError) throw state.parseError;
        return { response: { status: 200, body: "ok" }, messages: state.parseMessages };
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
      return { messages: [] };
    },
  };
  return { state, plugins };
}

const CHANNEL = FAKE_CHANNEL;
const webhook = FAKE_WEBHOOK;

let stateDir: string;
let service: ChannelService | undefined;
let bus: Bus | undefined;
beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), "exoclaw-bus-channels-"));
  emulator.reset();
});
afterEach(async () => {
  await service?.bus?.stopInbound();
  await service?.bus?.stopOutbound();
  await bus?.close();
  service = undefined;
  bus = undefined;
  rmSync(stateDir, { recursive: true, force: true });
});

async function setup(log: SessionLog = createMemorySessionLog()) {
  const fake = fakePlugin();
  const logger = recordingLogger();
  // No provider retries or breaker: each delivery attempt is one model call (the tests count them).
  const { runtime } = makeRuntime(
    emulator,
    [agentConfig()],
    { resilience: { anthropic: { ...DEFAULT_RESILIENCE, maxRetries: 0, failures: 1000, keys: 1 } } },
    log,
  );
  const router = compileRouter([], ["main"], "main");
  const b = await createMemoryBus({ stateDir });
  bus = b;
  service = createChannelService({ channels: [CHANNEL], plugins: fake.plugins, router, runtime, stateDir, logger, bus: { bus: b, maxDeliver: 3 } });
  await service.bus!.start();
  const post = async (peer: string, content: string, id: string) => {
    fake.state.parseMessages = [{ peer, peerKind: "direct", content, attachments: [], platformMessageId: id }];
    return service!.handleWebhook(webhook);
  };
  const modelCalls = (text: string) => emulator.requests.filter((r) => JSON.stringify(r.body).includes(text)).length;
  return { ...fake, logger, runtime, log, service, bus: b, post, modelCalls };
}

const key = (id: string) => inboundMsgId("chat", "default", id);
const sessionKey = (peer: string) => `agent:main:chat:default:${peer}`;
const settle = (ms = 300) => new Promise((r) => setTimeout(r, ms));

/** Dead letters, once there are some (the failure log line comes just before the entry is stored). */
async function stored(b: Bus, consumer?: string) {
  for (let i = 0; ; i++) {
    const dead = await b.deadLetters.list(consumer === undefined ? {} : { consumer });
    if (dead.length > 0 || i >= 100) return dead;
    await settle(20);
  }
}

describe("channels over the bus (in-process bus)", () => {
  it("publishes the admitted message, runs the turn with the message id as key, replies once via the out stream", async () => {
    const t = await setup();
    const answer = await t.post("alice", "hello bus", "m1");
    expect(answer.status).toBe(200);
    await until(() => t.state.sent.length === 1, 10_000, "the reply");
    expect(t.state.sent[0]).toMatchObject({ account: "default", peer: "alice", content: "You said: hello bus", replyTo: "m1", replyId: `${key("m1")}:reply` });
    const events = await t.log.read(sessionKey("alice"));
    expect(events.find((e) => e.kind === "message_received")?.data).toMatchObject({ idempotencyKey: key("m1"), platformMessageId: "m1" });
    expect(t.service.counters().chat).toMatchObject({ received: 1, accepted: 1, answered: 1 });
    // The platform redelivers: the bus drops the same id; nothing more is sent or asked.
    expect((await t.post("alice", "hello bus", "m1")).status).toBe(200);
    await settle();
    expect(t.state.sent).toHaveLength(1);
    expect(t.modelCalls("hello bus")).toBe(1);
  });

  it("a group member's message keeps its host-written sender across the bus (journaled, and shown to the model)", async () => {
    const t = await setup();
    t.state.parseMessages = [
      { peer: "g1", peerKind: "group", sender: "U7", senderName: "Ann", content: "bus sender-1", attachments: [], platformMessageId: "s1" },
    ];
    expect((await t.service.handleWebhook(webhook)).status).toBe(200);
    await until(() => t.state.sent.length === 1, 10_000, "the reply");
    const events = await t.log.read(sessionKey("g1"));
    expect(events.find((e) => e.kind === "message_received")?.data).toMatchObject({ sender: "U7", senderName: "Ann" });
    const req = emulator.requests.find((r) => JSON.stringify(r.body).includes("bus sender-1"))!;
    expect(req.body.messages.at(-1).content[0].text).toMatch(/^\[exoclaw sender\] id="U7" name="Ann" /);
  });

  it("a turn already handled (outcome stored, bus id not recorded) is answered from the store: no second model call, one reply", async () => {
    const t = await setup();
    // As if a process ran the turn and died before its bus ack and before publishing the reply.
    await t.runtime.run(
      {
        agentId: "main",
        sessionKey: sessionKey("bob"),
        content: "done before",
        channel: "chat",
        account: "default",
        peer: "bob",
        idempotencyKey: key("b1"),
        platformMessageId: "b1",
      },
      () => {},
    );
    await t.bus.publish(
      inboundSubject({ channel: "chat", account: "default", peer: "bob" }),
      { v: 1, channel: "chat", account: "default", peer: "bob", content: "done before", platformMessageId: "b1", attachments: 0, receivedAt: Date.now() },
      { msgId: key("b1") },
    );
    await until(() => t.state.sent.length === 1, 10_000, "the reply");
    expect(t.state.sent[0]).toMatchObject({ peer: "bob", content: "You said: done before", replyTo: "b1" });
    await settle();
    expect(t.modelCalls("done before")).toBe(1);
    expect(t.state.sent).toHaveLength(1);
  });

  it("a turn another process journaled and never finished is run again under the next key, once", async () => {
    const t = await setup();
    // What a process killed between journaling and its turn leaves (no local turn, no outcome).
    await t.log.append(sessionKey("carl"), [
      {
        kind: "message_received",
        runId: "dead-run",
        data: { content: "left behind", channel: "chat", account: "default", peer: "carl", platformMessageId: "c1", idempotencyKey: key("c1") },
      },
      { kind: "turn_started", runId: "dead-run", data: { runId: "dead-run" } },
    ]);
    await t.bus.publish(
      inboundSubject({ channel: "chat", account: "default", peer: "carl" }),
      { v: 1, channel: "chat", account: "default", peer: "carl", content: "left behind", platformMessageId: "c1", attachments: 0, receivedAt: Date.now() },
      { msgId: key("c1") },
    );
    await until(() => t.state.sent.length === 1, 10_000, "the reply");
    expect(t.state.sent[0]).toMatchObject({ content: "You said: left behind", replyTo: "c1" });
    expect(t.logger.lines.some((l) => l.msg === "turn of a bus message was left unfinished by another process; running it again")).toBe(true);
    const keys = (await t.log.read(sessionKey("carl")))
      .filter((e) => e.kind === "message_received")
      .map((e) => (e.data as { idempotencyKey?: string }).idempotencyKey);
    expect(keys).toEqual([key("c1"), `${key("c1")}#2`]);
    await settle();
    expect(t.state.sent).toHaveLength(1);
  });

  it("walks the keys of earlier attempts: a failed first attempt, then a second one a dead process left unfinished -> the third runs, once", async () => {
    const t = await setup();
    await t.log.append(sessionKey("dora"), [
      {
        kind: "message_received",
        runId: "r1",
        data: { content: "walk the keys", channel: "chat", account: "default", peer: "dora", platformMessageId: "w1", idempotencyKey: key("w1") },
      },
      { kind: "turn_started", runId: "r1", data: { runId: "r1" } },
      { kind: "error", runId: "r1", data: { code: -32000, message: "provider said 500" } },
      {
        kind: "message_received",
        runId: "r2",
        data: { content: "walk the keys", channel: "chat", account: "default", peer: "dora", idempotencyKey: `${key("w1")}#2` },
      },
      { kind: "turn_started", runId: "r2", data: { runId: "r2" } },
    ]);
    await t.bus.publish(
      inboundSubject({ channel: "chat", account: "default", peer: "dora" }),
      { v: 1, channel: "chat", account: "default", peer: "dora", content: "walk the keys", platformMessageId: "w1", attachments: 0, receivedAt: Date.now() },
      { msgId: key("w1") },
    );
    await until(() => t.state.sent.length === 1, 10_000, "the reply");
    expect(t.state.sent[0]).toMatchObject({ content: "You said: walk the keys", replyTo: "w1" });
    const keys = (await t.log.read(sessionKey("dora")))
      .filter((e) => e.kind === "message_received")
      .map((e) => (e.data as { idempotencyKey?: string }).idempotencyKey);
    expect(keys).toEqual([key("w1"), `${key("w1")}#2`, `${key("w1")}#3`]);
    await settle();
    expect(t.modelCalls("walk the keys")).toBe(1);
    expect(t.state.sent).toHaveLength(1);
  });

  it("a key claimed by a dead process that never journaled it (JetStream store) is skipped on the redelivery: answered once under the next key", async () => {
    // The JetStream session log claims a key in KV before the append; a process killed in between
    // leaves a claim without a message, which the store honours until its claim timeout.
    const inner = createMemorySessionLog();
    const orphan = key("o1");
    const log = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === "appendEvents") {
          return async (sessionKey: string, events: Parameters<SessionLog["appendEvents"]>[1], ...rest: unknown[]) => {
            const m = events.find((e) => e.kind === "message_received");
            const d = m?.data as { idempotencyKey?: string; platformMessageId?: string } | undefined;
            if (d?.idempotencyKey === orphan) throw new DuplicateEventError("idempotencyKey", orphan);
            if (d?.platformMessageId === "o1") throw new DuplicateEventError("platformMessageId", "o1");
            return (target.appendEvents as (...a: unknown[]) => unknown)(sessionKey, events, ...rest);
          };
        }
        return Reflect.get(target, prop, receiver);
      },
    });
    const t = await setup(log);
    expect((await t.post("olga", "orphaned claim", "o1")).status).toBe(200);
    await until(() => t.state.sent.length === 1, 15_000, "the reply");
    expect(t.state.sent[0]).toMatchObject({ content: "You said: orphaned claim", replyTo: "o1" });
    // First delivery: retried (not taken over); the redelivery moves on to the next key.
    expect(
      t.logger.lines.filter((l) => l.msg === "a dead process claimed this message's key without journaling it; running it under the next key"),
    ).toHaveLength(1);
    const keys = (await inner.read(sessionKey("olga")))
      .filter((e) => e.kind === "message_received")
      .map((e) => (e.data as { idempotencyKey?: string }).idempotencyKey);
    expect(keys).toEqual([`${orphan}#2`]);
    await settle();
    expect(t.state.sent).toHaveLength(1);
    expect(await t.bus.deadLetters.count()).toBe(0);
  });

  it("a provider that always fails: 3 attempts under keys <id>, <id>#2, <id>#3, one failure notice, one dead letter", async () => {
    const t = await setup();
    expect((await t.post("dana", "FAIL_500 now", "d1")).status).toBe(200);
    await until(() => t.state.sent.length === 1, 15_000, "the failure notice");
    expect(t.state.sent[0]!.content).toMatch(/^Sorry, your message could not be answered: /);
    await until(() => t.logger.lines.some((l) => l.msg === "channel message moved to the dead-letter store"), 10_000, "the dead letter");
    const dead = await stored(t.bus);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ msgId: key("d1"), consumer: "gateway", attempts: 3, subject: "exoclaw.in.chat.default.dana" });
    expect(t.modelCalls("FAIL_500 now")).toBe(3);
    const keys = (await t.log.read(sessionKey("dana")))
      .filter((e) => e.kind === "message_received")
      .map((e) => (e.data as { idempotencyKey?: string }).idempotencyKey);
    expect(keys).toEqual([key("d1"), `${key("d1")}#2`, `${key("d1")}#3`]);
    // Replayed: a fresh turn under the replay's id (the platform id is not passed again).
    const [r] = await t.bus.deadLetters.replay();
    await until(() => t.modelCalls("FAIL_500 now") === 6, 15_000, "three more attempts");
    await until(() => t.state.sent.length === 2, 10_000, "the replay's notice");
    const replayKeys = (await t.log.read(sessionKey("dana")))
      .filter((e) => e.kind === "message_received")
      .map((e) => e.data as { idempotencyKey?: string; platformMessageId?: string });
    expect(replayKeys[3]).toEqual(expect.objectContaining({ idempotencyKey: r!.msgId }));
    expect(replayKeys[3]?.platformMessageId).toBeUndefined();
  }, 40_000);

  it("a platform send that fails is retried by the bus; one that keeps failing is dead-lettered on out-<channel> and counted", async () => {
    const t = await setup();
    t.state.sendFailures = 2;
    await t.post("erin", "flaky platform", "e1");
    await until(() => t.state.sent.length === 1, 15_000, "the reply after two failed sends");
    expect(t.service.counters().chat).toMatchObject({ answered: 1, sendFailures: 0 });
    t.state.sendFailures = 100;
    await t.post("erin", "dead platform", "e2");
    await until(() => t.logger.lines.some((l) => l.msg === "channel send failed; moved to the dead-letter store"), 15_000, "the send's dead letter");
    const dead = await stored(t.bus, "out-chat");
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ msgId: `${key("e2")}:reply`, attempts: 3, subject: "exoclaw.out.chat.default.erin" });
    expect(t.service.counters().chat!.sendFailures).toBe(1);
    // The platform is back: replaying the dead letter sends the reply.
    t.state.sendFailures = 0;
    await t.bus.deadLetters.replay();
    await until(() => t.state.sent.length === 2, 10_000, "the replayed reply");
    // The replayed dead letter carries the original reply id (a platform deduping on it sees one).
    expect(t.state.sent[1]).toMatchObject({ content: "You said: dead platform", replyTo: "e2", replyId: `${key("e2")}:reply` });
  }, 40_000);

  it("a send the plugin reports as permanently failed is dead-lettered at once, not retried", async () => {
    const t = await setup();
    t.state.permanentFailures = 1;
    await t.post("fay", "refused by the platform", "f1");
    await until(
      () => t.logger.lines.some((l) => l.msg === "channel send failed permanently; moved to the dead-letter store (not retried)"),
      15_000,
      "the permanent failure",
    );
    const dead = await stored(t.bus, "out-chat");
    expect(dead.find((d) => d.msgId === `${key("f1")}:reply`)).toMatchObject({ attempts: 1 });
    expect(t.service.counters().chat!.sendFailures).toBe(1);
    expect(t.state.sent).toHaveLength(0);
  }, 40_000);

  it("a plugin too busy to parse gets the platform a 503 with Retry-After (redeliver), not a 500; other parse failures stay 500", async () => {
    const t = await setup();
    t.state.parseError = new ChannelPluginError("fake", "parse", "busy", "is busy: 4 calls running and 64 waiting");
    const busy = await t.service.handleWebhook(webhook);
    expect(busy.status).toBe(503);
    expect(busy.headers["retry-after"]).toBe("1");
    expect(JSON.parse(String(busy.body)).error).toBe('channel "chat": the plugin is busy; redeliver later');
    t.state.parseError = new ChannelPluginError("fake", "parse", "trap", "unreachable");
    expect((await t.service.handleWebhook(webhook)).status).toBe(500);
  });

  it("terms what no retry can fix: a malformed payload, a channel this gateway does not serve", async () => {
    const t = await setup();
    await t.bus.publish(inboundSubject({ channel: "chat", account: "default", peer: "x" }), { v: 1, channel: "chat" }, { msgId: "bad-1" });
    await t.bus.publish(
      inboundSubject({ channel: "other", account: "default", peer: "y" }),
      { v: 1, channel: "other", account: "default", peer: "y", content: "hi", platformMessageId: "o1", attachments: 0, receivedAt: 0 },
      { msgId: "other-1" },
    );
    await until(() => t.logger.lines.filter((l) => /dead-lettered$/.test(l.msg)).length === 2, 10_000, "two terms");
    let dead = await t.bus.deadLetters.list();
    for (let i = 0; i < 100 && dead.length < 2; i++) {
      await settle(20);
      dead = await t.bus.deadLetters.list();
    }
    expect(dead.map((d) => [d.msgId, d.attempts])).toEqual([
      ["bad-1", 1],
      ["other-1", 1],
    ]);
    expect(dead[0]!.error).toMatch(/malformed inbound payload: field 'account'/);
    expect(dead[1]!.error).toMatch(/channel "other" is not configured on this gateway/);
    expect(emulator.requests).toHaveLength(0);
  });
});
