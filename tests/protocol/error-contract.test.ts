// Errors are a contract between layers (docs/reliability.md, "Errors and retries"): the agent names
// each failure with a reason (host/src/agent/errors.ts), protocol/ maps reasons to JSON-RPC codes
// in one table, and the consumers (channel admission, the bus consumer, the reply outbox) classify
// by type and reason, never by a code list, a class-name string or a message's text. The consumer
// checks below give the typed errors another wording than the runtime's: the old classification
// (a regex on the orphan-claim text in channels/bus.ts) dead-lettered such a message instead of
// running it under the next key.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  AgentError,
  ClientGoneError,
  failureReason,
  InterruptedTurnError,
  isInterrupted,
  isOrphanClaim,
  isReplay,
  isSessionBusy,
  isTransient,
  isTransientRefusal,
  isTurnAborted,
  ProviderError,
  ProviderStallError,
  ReplayedTurnError,
  TurnTimeoutError,
  TurnStoppedError,
  ToolLoopError,
  type FailureReason,
} from "../../host/src/agent/index.js";
import { createMemoryBus, type Bus } from "../../host/src/bus/index.js";
import { inboundMsgId } from "../../host/src/channels/bus.js";
import { isPermanentSendError } from "../../host/src/channels/outbox.js";
import { createChannelService, type ChannelPlugins, type ChannelRuntime, type ChannelService } from "../../host/src/channels/service.js";
import { ChannelPluginError, isPluginBusy } from "../../host/src/plugins/index.js";
import { ErrorCode, FailureCode, reasonOfCode, RpcError } from "../../host/src/protocol/errors.js";
import { toErrorObject } from "../../host/src/protocol/jsonrpc.js";
import { compileRouter } from "../../host/src/router/index.js";
import { createMemorySessionLog } from "../../host/src/store/index.js";
import { StoreError } from "../../host/src/store/errors.js";
import { agentConfig, makeRuntime, recordingLogger, until } from "../agent/support.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { FAKE_CHANNEL, FAKE_WEBHOOK } from "../channels/support.js";

/** The wire code of every reason (docs/protocol.md, "Errors"): a client sees the codes of protocol v1. */
const WIRE: Record<FailureReason, number> = {
  parse_error: -32700,
  invalid_request: -32600,
  method_not_found: -32601,
  invalid_params: -32602,
  internal: -32603,
  orphan_claim: -32603,
  provider_error: -32000,
  idle_timeout: -32000,
  provider_unavailable: -32001,
  max_iterations: -32002,
  tool_loop: -32002,
  frame_too_large: -32003,
  session_busy: -32004,
  shutting_down: -32005,
  aborted: -32006,
  interrupted: -32006,
  turn_timeout: -32006,
  client_gone: -32006,
  stopped: -32006,
  plugin_error: -32007,
  forbidden: -32010,
  budget_exceeded: -32011,
  unknown: -32603,
};

describe("failure reasons and their wire codes", () => {
  it("every reason maps to its JSON-RPC code, and an AgentError goes on the wire as {code, message} only", () => {
    expect(FailureCode).toEqual(WIRE);
    for (const reason of Object.keys(WIRE) as FailureReason[]) {
      const err = new AgentError(reason, `text of ${reason}`);
      expect(toErrorObject(err)).toEqual({ code: WIRE[reason], message: `text of ${reason}` });
      expect(failureReason(err)).toBe(reason);
    }
  });

  it("a bare code (a stored or replayed failure) stands for its most general reason; an unknown code is never retried", () => {
    expect(reasonOfCode(-32006)).toBe("aborted");
    expect(reasonOfCode(-32603)).toBe("internal");
    expect(reasonOfCode(-32000)).toBe("provider_error");
    expect(reasonOfCode(-32099)).toBe("unknown");
    expect(isTransient(new RpcError(-32099, "from a newer peer"))).toBe(false);
    expect(failureReason(new ReplayedTurnError(-32004, "any text", "r1", "s"))).toBe("session_busy");
    // A replay of a failure seen in this process keeps its reason.
    expect(failureReason(new ReplayedTurnError(-32603, "any text", "r1", "s", "orphan_claim"))).toBe("orphan_claim");
  });

  it("the agent's typed errors carry their reason; their wire form is unchanged", () => {
    expect(failureReason(new ProviderError(ErrorCode.ProviderError, "x"))).toBe("provider_error");
    expect(failureReason(new ProviderError(ErrorCode.ProviderUnavailable, "x"))).toBe("provider_unavailable");
    const stall = new ProviderStallError("anthropic", 5000);
    expect(failureReason(stall)).toBe("idle_timeout");
    expect(toErrorObject(stall)).toMatchObject({ code: -32000, data: { reason: "idle_timeout", idleTimeoutMs: 5000 } });
    expect(failureReason(new TurnTimeoutError(1000))).toBe("turn_timeout");
    expect(failureReason(new ClientGoneError())).toBe("client_gone");
    expect(toErrorObject(new TurnStoppedError("chat.abort"))).toEqual({
      code: -32006,
      message: "turn stopped by chat.abort",
      data: { reason: "stopped", by: "chat.abort" },
    });
    expect(failureReason(new ToolLoopError("calculator", 3))).toBe("tool_loop");
    const interrupted = new InterruptedTurnError("r1", "reworded: replaced by a newer message");
    expect(failureReason(interrupted)).toBe("interrupted");
    expect(toErrorObject(interrupted)).toEqual({ code: -32006, message: "reworded: replaced by a newer message" });
    expect(failureReason(new StoreError("unavailable", "disk gone"))).toBeUndefined();
  });

  it("the retry table: who retries which reason", () => {
    const admission = (Object.keys(WIRE) as FailureReason[]).filter((r) => isTransientRefusal(new AgentError(r, "t")));
    expect(admission.sort()).toEqual(["session_busy", "shutting_down"]);
    const turn = (Object.keys(WIRE) as FailureReason[]).filter((r) => isTransient(new AgentError(r, "t")));
    expect(turn.sort()).toEqual(["idle_timeout", "internal", "orphan_claim", "provider_error", "provider_unavailable", "session_busy", "shutting_down"]);
    const aborts = (Object.keys(WIRE) as FailureReason[]).filter((r) => isTurnAborted(new AgentError(r, "t")));
    expect(aborts.sort()).toEqual(["aborted", "client_gone", "interrupted", "stopped", "turn_timeout"]);
    // Not a runtime failure (the store): transient on both paths.
    expect(isTransientRefusal(new StoreError("unavailable", "x"))).toBe(true);
    expect(isTransient(new StoreError("unavailable", "x"))).toBe(true);
  });

  it("predicates go by type and reason, not by wording or a lookalike's fields", () => {
    expect(isOrphanClaim(new AgentError("orphan_claim", "any wording at all"))).toBe(true);
    expect(isOrphanClaim(new RpcError(-32603, "the idempotencyKey was reported taken but its message was not found"))).toBe(false);
    expect(isSessionBusy(new AgentError("session_busy", "reworded"))).toBe(true);
    expect(isReplay(new ReplayedTurnError(-32000, "reworded", "r", "s"))).toBe(true);
    expect(isReplay(Object.assign(new Error("x"), { name: "ReplayedTurnError", code: -32000 }))).toBe(false);
    expect(isInterrupted(Object.assign(new Error("x"), { name: "InterruptedTurnError", code: -32006 }))).toBe(false);
    expect(isPluginBusy(new ChannelPluginError("p", "parse", "busy", "reworded overload"))).toBe(true);
    expect(isPluginBusy({ kind: "busy" })).toBe(false);
    expect(isPermanentSendError(new ChannelPluginError("p", "send", "trap", "reworded crash"))).toBe(true);
    expect(isPermanentSendError({ name: "ChannelPluginError", kind: "trap", reason: "x" })).toBe(false);
  });
});

// --- consumers, with errors reworded -------------------------------------------------------------

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
});

const CHANNEL = FAKE_CHANNEL;
const webhook = FAKE_WEBHOOK;

let stateDir: string;
let service: ChannelService | undefined;
let bus: Bus | undefined;
beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), "exoclaw-error-contract-"));
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

/**
 * The channels service over the real runtime; `fail(key, n)` may throw a typed error for the
 * n-th call with an idempotency key instead of running the turn (the runtime's failure, reworded).
 */
async function setup(fail: (key: string, n: number) => Error | undefined, withBus: boolean) {
  const sent: Record<string, unknown>[] = [];
  const state = { parseMessages: [] as unknown[] };
  const plugins: ChannelPlugins = {
    channelPlugins: () => [{ name: "fake", exports: { poll: false }, signatureHeaders: [] }],
    async callChannel(_plugin, fn, input) {
      if (fn === "parse") return { response: { status: 200, body: "ok" }, messages: state.parseMessages };
      if (fn === "send") {
        sent.push(input as Record<string, unknown>);
        return { platformMessageId: `out-${sent.length}` };
      }
      return { messages: [] };
    },
  };
  const logger = recordingLogger();
  const { runtime: real } = makeRuntime(emulator, [agentConfig()], {}, createMemorySessionLog());
  const calls: string[] = [];
  const runtime: ChannelRuntime = {
    run(request, emit, signal, hooks) {
      const key = request.idempotencyKey ?? "";
      calls.push(key);
      const err = fail(key, calls.filter((k) => k === key).length);
      if (err !== undefined) return Promise.reject(err);
      return real.run(request, emit, signal, hooks);
    },
    closeAbandoned: (key, message) => real.closeAbandoned(key, message),
  };
  const router = compileRouter([], ["main"], "main");
  if (withBus) bus = await createMemoryBus({ stateDir });
  service = createChannelService({
    channels: [CHANNEL],
    plugins,
    router,
    runtime,
    stateDir,
    logger,
    ...(bus !== undefined ? { bus: { bus, maxDeliver: 3 } } : {}),
  });
  if (withBus) await service.bus!.start();
  const post = async (peer: string, content: string, id: string) => {
    state.parseMessages = [{ peer, peerKind: "direct", content, attachments: [], platformMessageId: id }];
    return service!.handleWebhook(webhook);
  };
  return { sent, calls, logger, post, service };
}

describe("consumers classify by reason, whatever the wording", () => {
  it("bus consumer: an orphaned key claim, reworded, is run under the next key on the redelivery (not dead-lettered)", async () => {
    // Fails against the old classification (/was reported taken but its message was not found/ on
    // the text): the reworded error counted as a plain -32603, retried until max_deliver, then
    // dead-lettered with a failure notice.
    const msgId = inboundMsgId("chat", "default", "o1");
    const t = await setup((key) => (key === msgId ? new AgentError("orphan_claim", "key claim without a message (reworded)") : undefined), true);
    expect((await t.post("olga", "orphaned claim", "o1")).status).toBe(200);
    await until(() => t.sent.length === 1, 15_000, "the reply");
    expect(t.sent[0]).toMatchObject({ content: "You said: orphaned claim", replyTo: "o1" });
    // First delivery retried (nak), the redelivery moves on to `<id>#2`.
    expect(t.calls).toEqual([msgId, msgId, `${msgId}#2`]);
    expect(await bus!.deadLetters.count()).toBe(0);
  });

  it("bus consumer: a replayed transient failure, reworded, moves on to the next key; a replayed final one is answered with its notice", async () => {
    const a = inboundMsgId("chat", "default", "a1");
    const b = inboundMsgId("chat", "default", "b1");
    const t = await setup((key) => {
      if (key === a) return new ReplayedTurnError(-32000, "the model had a bad day (reworded)", "r-a", "s");
      if (key === b) return new ReplayedTurnError(-32002, "too many rounds (reworded)", "r-b", "s");
      return undefined;
    }, true);
    await t.post("amy", "again please", "a1");
    await t.post("bob", "final answer", "b1");
    await until(() => t.sent.length === 2, 15_000, "the reply and the notice");
    const byPeer = Object.fromEntries(t.sent.map((s) => [s.peer, s]));
    expect(byPeer.amy).toMatchObject({ content: "You said: again please" });
    expect(String(byPeer.bob!.content)).toContain("too many rounds (reworded)");
    expect(t.calls.filter((k) => k.startsWith(b))).toEqual([b]);
  });

  it("channel admission: busy or shutting down (reworded) -> 503 for redelivery; a replayed failure -> accepted, no second notice", async () => {
    let refusal: Error | undefined = new AgentError("shutting_down", "closing time (reworded)");
    const t = await setup((_key, n) => (n === 1 ? refusal : undefined), false);
    const first = await t.post("cara", "hello", "c1");
    expect(first.status).toBe(503);
    expect(first.body).toContain("closing time (reworded)");
    refusal = new ReplayedTurnError(-32000, "failed before (reworded)", "r-d", "s");
    expect((await t.post("dan", "hello", "d1")).status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect(t.sent.filter((s) => s.peer === "dan")).toHaveLength(0);
    expect(t.service.counters().chat).toMatchObject({ accepted: 1, refused: 0 });
    refusal = new InterruptedTurnError("r-e", "replaced (reworded)");
    // Interrupted before acceptance is a final refusal: no retry, no notice (the newer message answers).
    expect((await t.post("eve", "hello", "e1")).status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect(t.sent.filter((s) => s.peer === "eve")).toHaveLength(0);
  });
});
