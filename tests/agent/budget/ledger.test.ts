/**
 * The pure parts of budgets and metering: prices, calendar windows in a time zone, the ledger's
 * reservations, and the guard with an injected clock (no gateway, no provider).
 */
import { describe, expect, it } from "vitest";
import { BudgetGuard, calendarWindow, costUsd, estimateInputTokens, MemoryLedger, PriceTable } from "../../../host/src/agent/index.js";
import type { ModelProvider, ModelRequest } from "../../../host/src/agent/types.js";
import { createMemorySessionLog } from "../../../host/src/store/index.js";
import { agentConfig, keyOf, recordingLogger } from "../support.js";

describe("prices", () => {
  it("prices a call from its real usage, cache tokens at their own rates", () => {
    const t = new PriceTable();
    const p = t.priceOf("anthropic", "claude-sonnet-4-6")!;
    expect(p).toMatchObject({ input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 });
    // 1000 in * $3/M + 500 out * $15/M + 2000 cache read * $0.30/M + 100 cache write * $3.75/M
    expect(costUsd(p, { inputTokens: 1000, outputTokens: 500, cacheReadTokens: 2000, cacheWriteTokens: 100 })).toBeCloseTo(
      0.003 + 0.0075 + 0.0006 + 0.000375,
      12,
    );
  });

  it("matches dated ids by prefix at a '-', makes ollama free, lets [pricing] override, and knows no price for an unknown model", () => {
    const t = new PriceTable({ "openai/my-finetune": { input: 7, output: 9 }, "anthropic/claude-sonnet-4-6": { input: 1, output: 2 } });
    expect(t.priceOf("anthropic", "claude-haiku-4-5-20251001")).toMatchObject({ input: 1, output: 5 });
    expect(t.priceOf("anthropic", "claude-sonnet-4-6")).toEqual({ input: 1, output: 2 });
    expect(t.priceOf("ollama", "llama3.2")).toEqual({ input: 0, output: 0 });
    expect(t.priceOf("openai", "my-finetune")).toEqual({ input: 7, output: 9 });
    // A dated id takes its longest listed prefix; a prefix not ending at a '-' does not count.
    expect(t.priceOf("openai", "gpt-5.4-mini-2026-03-17")).toMatchObject({ input: 0.75, output: 4.5 });
    expect(t.priceOf("openai", "gpt-5.45")).toBeUndefined();
    expect(t.priceOf("anthropic", "test-model")).toBeUndefined();
  });
});

describe("calendar windows", () => {
  it("cuts days at the zone's midnight, not UTC's", () => {
    // 2026-12-04 23:30 UTC is already 2026-12-05 in Berlin (UTC+1), still 12-04 in UTC and New York.
    const t = Date.UTC(2026, 11, 4, 23, 30);
    expect(calendarWindow(t, "UTC")).toEqual({ day: "2026-12-04", month: "2026-12" });
    expect(calendarWindow(t, "Europe/Berlin")).toEqual({ day: "2026-12-05", month: "2026-12" });
    expect(calendarWindow(t, "America/New_York")).toEqual({ day: "2026-12-04", month: "2026-12" });
    // New year's eve in Tokyo is already January.
    expect(calendarWindow(Date.UTC(2026, 11, 31, 15, 0), "Asia/Tokyo")).toEqual({ day: "2027-01-01", month: "2027-01" });
  });
});

describe("ledger", () => {
  it("reserves all or nothing, refuses past a limit, settles to the real amount, warns once at the fraction", () => {
    const l = new MemoryLedger(0.8);
    const a = { key: "a", usd: 1 };
    const b = { key: "b", tokens: 100 };
    const r1 = l.reserve([a, b], { usd: 0.6, tokens: 50 });
    expect(r1.ok).toBe(true);
    // b has room, a not: nothing is reserved on b either.
    const r2 = l.reserve([b, a], { usd: 0.5, tokens: 10 });
    expect(r2).toMatchObject({ ok: false, counter: a, unit: "usd" });
    expect(l.spent("b").tokens).toBe(50);
    // Settling replaces the worst case by the real spend.
    expect(l.settle((r1 as { id: number }).id, { usd: 0.1, tokens: 5 })).toEqual([]);
    expect(l.spent("a")).toEqual({ usd: 0.1, tokens: 5 });
    const r3 = l.reserve([a, b], { usd: 0.75, tokens: 20 });
    expect(r3.ok).toBe(true);
    expect(l.settle((r3 as { id: number }).id, { usd: 0.75, tokens: 20 })).toEqual([{ key: "a", unit: "usd", spent: 0.85, limit: 1 }]);
    const r4 = l.reserve([a], { usd: 0.1, tokens: 1 });
    expect(l.settle((r4 as { id: number }).id, { usd: 0.1, tokens: 1 })).toEqual([]);
    expect(l.reserve([a], { usd: 0.1, tokens: 1 })).toMatchObject({ ok: false });
  });
});

/** A provider that answers every call with fixed usage (the guard only needs the stream's shape). */
function fixedProvider(inputTokens: number, outputTokens: number): ModelProvider & { models: string[] } {
  const models: string[] = [];
  return {
    name: "anthropic",
    models,
    async *stream(request: ModelRequest) {
      models.push(request.model);
      yield { type: "text", delta: "ok" };
      yield { type: "usage", inputTokens, outputTokens };
      yield { type: "stop", reason: "end_turn" };
    },
  };
}

async function call(p: ModelProvider, request: ModelRequest): Promise<void> {
  for await (const _ of p.stream(request, new AbortController().signal)) void _;
}

const REQUEST: ModelRequest = { model: "claude-sonnet-4-6", messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }], tools: [], maxTokens: 100 };

describe("budget guard", () => {
  it("a daily token budget resets at the configured zone's midnight", async () => {
    let now = Date.UTC(2026, 11, 4, 22, 0); // 23:00 in Berlin
    const guard = new BudgetGuard({
      budgets: { timezone: "Europe/Berlin", warnAt: 0.8, peer: { dayTokens: 900 } },
      pricing: {},
      logger: recordingLogger(),
      now: () => now,
    });
    const agent = agentConfig({ model: "claude-sonnet-4-6", maxTokens: 100 });
    const provider = fixedProvider(300, 100);
    const meter = guard.meter(provider, agent, keyOf("p1"), "run-1");
    await call(meter.provider, REQUEST);
    await call(meter.provider, REQUEST); // 800 of 900 tokens spent: the next worst case (173) does not fit
    await expect(call(meter.provider, REQUEST)).rejects.toMatchObject({
      code: -32011,
      reason: "budget_exceeded",
      data: { scope: "conversation", window: "day", unit: "tokens" },
    });
    now = Date.UTC(2026, 11, 4, 22, 59, 59); // 23:59:59 Berlin: same day
    await expect(call(meter.provider, REQUEST)).rejects.toMatchObject({ code: -32011 });
    now = Date.UTC(2026, 11, 4, 23, 0, 0); // 00:00 Berlin (still 12-04 in UTC): a new day
    await call(meter.provider, REQUEST);
    expect(provider.models).toHaveLength(3);
    // Another peer has its own budget.
    await call(guard.meter(provider, agent, keyOf("p2"), "run-2").provider, REQUEST);
  });

  it("prices the usage event and, with on_exceeded = downgrade, runs a refused call on the cheaper model", async () => {
    const logger = recordingLogger();
    const guard = new BudgetGuard({ budgets: { timezone: "UTC", warnAt: 0.8 }, pricing: {}, logger });
    // Worst case on sonnet: (estimate + 1000 out) at $3/$15 > $0.012; on haiku at $1/$5 it fits.
    const agent = agentConfig({
      model: "claude-sonnet-4-6",
      maxTokens: 1000,
      budget: { sessionUsd: 0.012, onExceeded: "downgrade", downgradeModel: "claude-haiku-4-5" },
    });
    const provider = fixedProvider(10, 10);
    const meter = guard.meter(provider, agent, keyOf("p1"), "run-1");
    await call(meter.provider, { ...REQUEST, maxTokens: 1000 });
    expect(provider.models).toEqual(["claude-haiku-4-5"]);
    const ev = meter.annotate({ type: "usage", data: { inputTokens: 10, outputTokens: 10 } });
    expect(ev).toEqual({
      type: "usage",
      data: { inputTokens: 10, outputTokens: 10, provider: "anthropic", model: "claude-haiku-4-5", costUsd: (10 * 1 + 10 * 5) / 1e6 },
    });
    expect(logger.lines.some((l) => l.msg === "budget: call downgraded to a cheaper model")).toBe(true);
  });

  it("warns once (log line and budget event) when a counter passes warn_at", async () => {
    const logger = recordingLogger();
    const events: string[] = [];
    const guard = new BudgetGuard({
      budgets: { timezone: "UTC", warnAt: 0.8, global: { monthTokens: 1000 } },
      pricing: {},
      logger,
      onEvent: (kind, agent) => events.push(`${kind}:${agent}`),
    });
    const meter = guard.meter(fixedProvider(400, 50), agentConfig({ model: "claude-sonnet-4-6", maxTokens: 100 }), keyOf("p1"), "run-1");
    await call(meter.provider, REQUEST); // 450: below 800
    expect(events).toEqual([]);
    await call(meter.provider, REQUEST); // 900: past 80 %
    await expect(call(meter.provider, REQUEST)).rejects.toMatchObject({ code: -32011 });
    expect(events).toEqual(["warning:main", "exceeded:main"]);
    const warning = logger.lines.find((l) => l.msg === "budget warning: counter past its warning fraction");
    expect(warning?.obj).toMatchObject({ agent: "main", unit: "tokens", spent: 900, limit: 1000 });
  });

  it("with a fallback chain: reserves at the dearest model, prices the call at the model that answered", async () => {
    const guard = new BudgetGuard({ budgets: { timezone: "UTC", warnAt: 0.8 }, pricing: {}, logger: recordingLogger() });
    const failingOver: ModelProvider = {
      name: "anthropic",
      async *stream() {
        yield { type: "failover", from: "anthropic/claude-haiku-4-5", to: "openai/gpt-5.4-mini", reason: "server_error", discard: false };
        yield { type: "usage", inputTokens: 1000, outputTokens: 100 };
        yield { type: "stop", reason: "end_turn" };
      },
    };
    const models = [
      { provider: "anthropic" as const, model: "claude-haiku-4-5" },
      { provider: "openai" as const, model: "gpt-5.4-mini" },
    ];
    const meter = guard.meter(
      failingOver,
      agentConfig({ model: "claude-haiku-4-5", models, budget: { sessionUsd: 1, onExceeded: "stop" } }),
      keyOf("p1"),
      "run-1",
    );
    await call(meter.provider, { ...REQUEST, model: "claude-haiku-4-5" });
    expect(meter.annotate({ type: "usage", data: { inputTokens: 1000, outputTokens: 100 } }).data).toMatchObject({
      provider: "openai",
      model: "gpt-5.4-mini",
      costUsd: (1000 * 0.75 + 100 * 4.5) / 1e6,
    });
    // Haiku's worst case (~100 estimated + 4096 out at $5/M, ~$0.021) fits $0.025; the chain's
    // dearest (gpt-5.4-mini at $4.50/M out is cheaper; opus 4.1 at $75/M is not) decides.
    const dear = [models[0]!, { provider: "anthropic" as const, model: "claude-opus-4-1" }];
    const strict = guard.meter(
      fixedProvider(1, 1),
      agentConfig({ model: "claude-haiku-4-5", models: dear, budget: { sessionUsd: 0.025, onExceeded: "stop" } }),
      keyOf("p2"),
      "run-2",
    );
    await expect(call(strict.provider, { ...REQUEST, model: "claude-haiku-4-5", maxTokens: 4096 })).rejects.toMatchObject({ code: -32011 });
    const cheap = guard.meter(
      fixedProvider(1, 1),
      agentConfig({ model: "claude-haiku-4-5", models, budget: { sessionUsd: 0.025, onExceeded: "stop" } }),
      keyOf("p3"),
      "run-3",
    );
    await call(cheap.provider, { ...REQUEST, model: "claude-haiku-4-5", maxTokens: 4096 });
  });

  it("refuses a USD budget on a model without a price, naming the [pricing] key to add", async () => {
    const guard = new BudgetGuard({ budgets: { timezone: "UTC", warnAt: 0.8, global: { dayUsd: 5 } }, pricing: {}, logger: recordingLogger() });
    const meter = guard.meter(fixedProvider(1, 1), agentConfig({ model: "mystery" }), keyOf("p1"), "run-1");
    await expect(call(meter.provider, { ...REQUEST, model: "mystery" })).rejects.toThrow('add [pricing."anthropic/mystery"]');
  });

  it("rebuilds spend from the usage events in the log (a restart keeps the month's spend)", async () => {
    const log = createMemorySessionLog();
    const at = Date.UTC(2026, 11, 4, 12);
    await log.append(keyOf("p1"), [
      { kind: "usage", at, data: { inputTokens: 100, outputTokens: 50, costUsd: 0.25, provider: "anthropic", model: "claude-sonnet-4-6" } },
      // An event written before metering: tokens only (no model to price it by).
      { kind: "usage", at, data: { inputTokens: 10, outputTokens: 5 } },
    ]);
    const guard = new BudgetGuard({
      budgets: { timezone: "UTC", warnAt: 0.8, global: { monthUsd: 0.3 } },
      pricing: {},
      logger: recordingLogger(),
      now: () => at + 1000,
    });
    await guard.rebuild(log);
    expect(await guard.spent("global|month:2026-12")).toEqual({ usd: 0.25, tokens: 165 });
    expect((await guard.spent(`peer:ws:default:p1|session:${keyOf("p1")}`)).tokens).toBe(165);
    // $0.05 left: a call whose worst case costs more is refused.
    const meter = guard.meter(fixedProvider(1, 1), agentConfig({ model: "claude-sonnet-4-6" }), keyOf("p2"), "run-1");
    await expect(call(meter.provider, { ...REQUEST, maxTokens: 4096 })).rejects.toMatchObject({ code: -32011, data: { scope: "gateway", window: "month" } });
  });

  it("estimates input tokens above the emulator's bytes/4 count", () => {
    const messages = [{ role: "user" as const, content: [{ type: "text" as const, text: "x".repeat(4000) }] }];
    const body = JSON.stringify({ model: "m", max_tokens: 100, messages, system: "s", stream: true });
    expect(estimateInputTokens({ messages, tools: [], system: "s" })).toBeGreaterThan(Math.ceil(body.length / 4));
  });
});

describe("metered usage events in the store", () => {
  it("stores provider, model, cache tokens and cost; refuses malformed ones naming the field; old events stay readable", async () => {
    const log = createMemorySessionLog();
    const data = { inputTokens: 10, outputTokens: 2, cacheReadTokens: 5, cacheWriteTokens: 1, costUsd: 0.0001, provider: "openai", model: "gpt-5.4-mini" };
    await log.append(keyOf("p1"), [
      { kind: "usage", data },
      { kind: "usage", data: { inputTokens: 1, outputTokens: 1 } },
    ]);
    expect((await log.read(keyOf("p1"))).map((e) => e.data)).toEqual([data, { inputTokens: 1, outputTokens: 1 }]);
    await expect(log.append(keyOf("p1"), [{ kind: "usage", data: { inputTokens: 1, outputTokens: 1, costUsd: -1 } }])).rejects.toThrow(
      "usage.costUsd must be a non-negative number",
    );
    await expect(log.append(keyOf("p1"), [{ kind: "usage", data: { inputTokens: 1, outputTokens: 1, cacheReadTokens: 1.5 } }])).rejects.toThrow(
      "usage.cacheReadTokens must be a non-negative integer",
    );
  });
});
