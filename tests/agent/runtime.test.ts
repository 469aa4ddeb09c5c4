/**
 * The agent runtime on the session log (memory back end, scripted provider): what a turn
 * journals, idempotency keys, crash recovery, compaction, queueing and shutdown.
 */
import { describe, expect, it, vi } from "vitest";
import { AgentRuntime, INTERRUPTED_MESSAGE, ReplayedTurnError, type TurnResult } from "../../host/src/agent/runtime.js";
import { outcomeFromEvents } from "../../host/src/agent/journal.js";
import { SUMMARY_REQUEST_PREFIX } from "../../host/src/agent/compaction.js";
import { ProviderError } from "../../host/src/agent/errors.js";
import type { ModelEvent, ModelProvider, ModelRequest, TurnEvent } from "../../host/src/agent/types.js";
import type { AgentConfig } from "../../host/src/config/types.js";
import { createMemorySessionLog, formatSessionKey, type SessionEvent, type SessionLog } from "../../host/src/store/index.js";
import { COMPACTION_SUMMARY_PREFIX, projectHistory } from "../../host/src/agent/index.js";

const KEY = formatSessionKey({ agent: "main", channel: "ws", account: "default", peer: "alice" });

const agent = (over: Partial<AgentConfig> = {}): AgentConfig => ({
  id: "main",
  provider: "anthropic",
  model: "test-model",
  maxIterations: 10,
  maxTokens: 4096,
  tools: ["*"],
  contextWindow: 100_000,
  outbound: [],
  queue: { mode: "followup", cap: 32, drop: "new" },
  ...over,
});

const lastUserText = (req: ModelRequest): string => {
  for (let i = req.messages.length - 1; i >= 0; i--) {
    const m = req.messages[i]!;
    if (m.role !== "user") continue;
    const t = m.content.find((b) => b.type === "text");
    if (t && t.type === "text") return t.text;
  }
  return "";
};

/**
 * A scripted model: "calc" asks the calculator once, a tool result gets "The answer is <r>.",
 * "FAIL" throws, "SLOW" waits for `gate` before answering, anything else gets "You said: <text>".
 */
function scriptedProvider() {
  const requests: ModelRequest[] = [];
  let release: () => void = () => {};
  let gate = new Promise<void>((r) => (release = r));
  const provider: ModelProvider & { requests: ModelRequest[]; open(): void } = {
    name: "anthropic",
    requests,
    open() {
      release();
      gate = new Promise<void>((r) => (release = r));
    },
    async *stream(req: ModelRequest, signal: AbortSignal): AsyncIterable<ModelEvent> {
      requests.push(structuredClone(req));
      // The gate open when the call started: `open()` releases every SLOW call begun before it,
      // however many async steps (the provider resilience layer) lie between its start and its wait.
      const myGate = gate;
      const last = req.messages[req.messages.length - 1]!;
      const result = last.content.find((b) => b.type === "tool_result");
      const text = lastUserText(req);
      if (result && result.type === "tool_result") {
        yield { type: "text", delta: "The answer is " };
        yield { type: "text", delta: `${result.content}.` };
        yield { type: "usage", inputTokens: 20, outputTokens: 5 };
        yield { type: "stop", reason: "end_turn" };
        return;
      }
      if (text.includes("FAIL")) throw new ProviderError(-32000, "provider anthropic returned HTTP 500: boom");
      if (text.includes("SLOW")) {
        yield { type: "text", delta: "slow " };
        await Promise.race([myGate, new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }))]);
      }
      if (text.startsWith("calc")) {
        yield { type: "text", delta: "Let me calculate." };
        yield { type: "tool_use", id: `tu-${requests.length}`, name: "calculator", input: { expression: "6*7" } };
        yield { type: "usage", inputTokens: 10, outputTokens: 3 };
        yield { type: "stop", reason: "tool_use" };
        return;
      }
      yield { type: "text", delta: "You said: " };
      yield { type: "text", delta: text };
      yield { type: "usage", inputTokens: Math.ceil(JSON.stringify(req.messages).length / 4), outputTokens: 4 };
      yield { type: "stop", reason: "end_turn" };
    },
  };
  return provider;
}

function makeRuntime(log: SessionLog, provider: ModelProvider, over: Partial<AgentConfig> = {}, maxQueuedPerSession?: number) {
  return new AgentRuntime({
    agents: [agent(over)],
    providers: () => provider,
    plugins: {
      tools: () => [
        { name: "calculator", description: "evaluates arithmetic", inputSchema: { type: "object", properties: { expression: { type: "string" } } } },
      ],
      callTool: async () => ({ content: "42", isError: false }),
    },
    log,
    ...(maxQueuedPerSession !== undefined ? { maxQueuedPerSession } : {}),
  });
}

const send = (rt: AgentRuntime, content: string, extra: { idempotencyKey?: string; peer?: string } = {}, events: TurnEvent[] = []) =>
  rt.run(
    {
      agentId: "main",
      sessionKey: extra.peer ? formatSessionKey({ agent: "main", channel: "ws", account: "default", peer: extra.peer }) : KEY,
      content,
      ...(extra.idempotencyKey ? { idempotencyKey: extra.idempotencyKey } : {}),
    },
    (e) => events.push(e),
  );

const kinds = (events: SessionEvent[]) => events.map((e) => e.kind);

describe("AgentRuntime on the session log", () => {
  it("journals a turn as events and projects the next turn's history from them", async () => {
    const log = createMemorySessionLog();
    const provider = scriptedProvider();
    const rt = makeRuntime(log, provider);
    const events: TurnEvent[] = [];
    const out = await send(rt, "calc please", { idempotencyKey: "k1" }, events);
    expect(out.text).toBe("The answer is 42.");
    expect(out.usage).toEqual({ inputTokens: 30, outputTokens: 8 });
    expect(events.map((e) => e.type)).toEqual(["text", "tool_use", "usage", "tool_result", "text", "text", "usage"]);

    const stored = await log.read(KEY);
    expect(kinds(stored)).toEqual([
      "message_received",
      "turn_started",
      "assistant_text",
      "tool_use",
      "usage",
      "tool_result",
      "assistant_text",
      "usage",
      "turn_ended",
    ]);
    expect(stored.every((e) => e.runId === out.runId)).toBe(true);
    expect(stored[0]!.data).toEqual({ content: "calc please", channel: "ws", account: "default", peer: "alice", idempotencyKey: "k1" });
    expect(outcomeFromEvents(stored, out.runId)).toEqual({
      status: "ended",
      outcome: { text: out.text, stopReason: out.stopReason, usage: out.usage, iterations: out.iterations },
    });

    await send(rt, "hello");
    const second = provider.requests.at(-1)!;
    expect(second.messages.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant", "user"]);
    expect(JSON.stringify(second.messages)).toContain("tool_result");
    expect(await rt.sessionCount()).toBe(1);
  });

  it("records a failed turn with an error event and leaves it out of the history", async () => {
    const log = createMemorySessionLog();
    const provider = scriptedProvider();
    const rt = makeRuntime(log, provider);
    await expect(send(rt, "please FAIL")).rejects.toMatchObject({ code: -32000 });
    const stored = await log.read(KEY);
    expect(kinds(stored)).toEqual(["message_received", "turn_started", "error"]);
    expect(stored[2]!.data).toMatchObject({ code: -32000 });
    await send(rt, "next");
    expect(provider.requests.at(-1)!.messages).toHaveLength(1);
    expect(await log.pendingTurns()).toEqual([]);
  });

  it("answers a repeated idempotency key with the first turn's outcome and never runs it twice", async () => {
    const log = createMemorySessionLog();
    const provider = scriptedProvider();
    const rt = makeRuntime(log, provider);
    const dupEvents: TurnEvent[] = [];
    const first = send(rt, "SLOW hello", { idempotencyKey: "same" });
    const dup = send(rt, "SLOW hello", { idempotencyKey: "same" }, dupEvents);
    await new Promise((r) => setTimeout(r, 20));
    provider.open();
    const [a, b] = await Promise.all([first, dup]);
    expect(a.replayed).toBeUndefined();
    expect(b).toEqual({ ...a, replayed: true });
    expect(dupEvents).toEqual([]);
    expect(provider.requests).toHaveLength(1);

    // From the store, in a new runtime (as after a restart).
    const rt2 = makeRuntime(log, provider);
    const c = await send(rt2, "SLOW hello", { idempotencyKey: "same" });
    expect(c).toEqual({ ...a, replayed: true });
    expect(provider.requests).toHaveLength(1);

    // A failed turn replays its failure.
    await expect(send(rt2, "FAIL now", { idempotencyKey: "bad" })).rejects.toMatchObject({ code: -32000 });
    const again = await send(rt2, "FAIL now", { idempotencyKey: "bad" }).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(ReplayedTurnError);
    expect(again).toMatchObject({ code: -32000 });
    expect((await log.read(KEY)).filter((e) => e.kind === "message_received")).toHaveLength(2);
  });

  it("journals a queued message at once and its turn_started when it starts", async () => {
    const log = createMemorySessionLog();
    const provider = scriptedProvider();
    const rt = makeRuntime(log, provider);
    const a = send(rt, "SLOW first");
    const b = send(rt, "second");
    await new Promise((r) => setTimeout(r, 20));
    expect(kinds(await log.read(KEY))).toEqual(["message_received", "turn_started", "message_received"]);
    provider.open();
    const [ra, rb] = await Promise.all([a, b]);
    const stored = await log.read(KEY);
    const startedB = stored.findIndex((e) => e.kind === "turn_started" && e.runId === rb.runId);
    const endedA = stored.findIndex((e) => e.kind === "turn_ended" && e.runId === ra.runId);
    expect(startedB).toBeGreaterThan(endedA);
    expect(projectHistory(stored).map((m) => (m.content[0] as { text: string }).text)).toEqual([
      "SLOW first",
      "slow You said: SLOW first",
      "second",
      "You said: second",
    ]);
  });

  it("refuses a turn when the session queue is full without journaling it", async () => {
    const log = createMemorySessionLog();
    const provider = scriptedProvider();
    const rt = makeRuntime(log, provider, {}, 2);
    const a = send(rt, "SLOW one");
    const b = send(rt, "two");
    await expect(send(rt, "three")).rejects.toMatchObject({ code: -32004 });
    // Open the gate only once the SLOW call waits on it (the turn reaches the model a few async steps after run()).
    await vi.waitFor(() => expect(provider.requests.length).toBe(1));
    provider.open();
    await Promise.all([a, b]);
    expect((await log.read(KEY)).filter((e) => e.kind === "message_received").map((e) => (e.data as { content: string }).content)).toEqual(["SLOW one", "two"]);
  });

  it("recovers after a crash: re-runs turns that had not started, fails the one that had", async () => {
    const log = createMemorySessionLog();
    const crashed = scriptedProvider();
    const rt1 = makeRuntime(log, crashed);
    void send(rt1, "done first", { idempotencyKey: "r0" });
    await new Promise((r) => setTimeout(r, 10));
    void send(rt1, "SLOW interrupted", { idempotencyKey: "r1" }).catch(() => {});
    void send(rt1, "queued behind", { idempotencyKey: "r2" }).catch(() => {});
    await new Promise((r) => setTimeout(r, 20));
    // rt1 "crashes" here: it never finishes. A new process opens the same store.
    const provider = scriptedProvider();
    const rt2 = makeRuntime(log, provider);
    const report = await rt2.recover();
    expect(report).toEqual({ rerun: 1, failed: 1 });
    // A client repeating its keys: the interrupted turn's failure, the re-run turn's outcome.
    await expect(send(rt2, "SLOW interrupted", { idempotencyKey: "r1" })).rejects.toMatchObject({ code: -32006, message: INTERRUPTED_MESSAGE });
    const r2 = await send(rt2, "queued behind", { idempotencyKey: "r2" });
    expect(r2).toMatchObject({ text: "You said: queued behind", replayed: true });
    expect(provider.requests.map(lastUserText)).toEqual(["queued behind"]);
    expect(provider.requests[0]!.messages.map(lastUserTextOf)).toEqual(["done first", "You said: done first", "queued behind"]);
    expect(await log.pendingTurns()).toEqual([]);
    // Nothing is recovered twice.
    expect(await makeRuntime(log, provider).recover()).toEqual({ rerun: 0, failed: 0 });
  });

  it("compacts a session past its context window with the agent's own model, and keeps going", async () => {
    const log = createMemorySessionLog();
    const provider = scriptedProvider();
    const rt = makeRuntime(log, provider, { contextWindow: 300, tools: [] });
    const outs: TurnResult[] = [];
    for (let i = 0; i < 12; i++) outs.push(await send(rt, `message number ${i} with some padding to fill the window quickly`));
    expect(outs.every((o, i) => o.text === `You said: message number ${i} with some padding to fill the window quickly`)).toBe(true);
    const stored = await log.read(KEY);
    const compactions = stored.filter((e) => e.kind === "compaction");
    if (process.env.DBG)
      console.log(
        compactions.map((c) => JSON.stringify(c.data)),
        provider.requests.map((r) => Math.ceil(JSON.stringify(r.messages.map((m) => m.content)).length / 4)),
      );
    expect(compactions.length).toBeGreaterThan(0);
    const summaryCalls = provider.requests.filter((r) => lastUserText(r).startsWith(SUMMARY_REQUEST_PREFIX));
    expect(summaryCalls).toHaveLength(compactions.length);
    expect(summaryCalls.every((r) => r.tools.length === 0 && r.system !== undefined)).toBe(true);
    // Every model request of a turn stays within the window (estimated), and starts with the summary once compacted.
    const turnCalls = provider.requests.filter((r) => !lastUserText(r).startsWith(SUMMARY_REQUEST_PREFIX));
    expect(turnCalls).toHaveLength(12);
    for (const r of turnCalls) expect(Math.ceil(JSON.stringify(r.messages.map((m) => m.content)).length / 4)).toBeLessThan(600);
    const last = turnCalls.at(-1)!;
    expect(lastUserTextOf(last.messages[0]!)).toMatch(new RegExp(`^${escape(COMPACTION_SUMMARY_PREFIX)}`));
    // The compacting turn reports the summarization call's usage too.
    const compactedRun = compactions[0]!.runId!;
    expect(stored.filter((e) => e.runId === compactedRun && e.kind === "usage")).toHaveLength(2);
  });

  it("fails queued and running turns at shutdown with error events", async () => {
    const log = createMemorySessionLog();
    const provider = scriptedProvider();
    const rt = makeRuntime(log, provider);
    const a = send(rt, "SLOW running").catch((e: unknown) => e);
    const b = send(rt, "queued").catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    await rt.drain(0);
    expect(await a).toMatchObject({ code: -32006 });
    expect(await b).toMatchObject({ code: -32006 });
    const errors = (await log.read(KEY)).filter((e) => e.kind === "error");
    expect(errors).toHaveLength(2);
    expect(await log.pendingTurns()).toEqual([]);
    await expect(send(rt, "late")).rejects.toMatchObject({ code: -32005 });
  });
});

function lastUserTextOf(m: { content: { type: string; text?: string }[] }): string {
  return m.content.find((b) => b.type === "text")?.text ?? "";
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
