// Prompt-cache tokens of OpenAI and Gemini through their official SDKs against the provider
// emulator: both count cache hits inside the prompt count and again in a detail field
// (OpenAI `usage.prompt_tokens_details.cached_tokens`, Gemini
// `usageMetadata.cachedContentTokenCount`). The usage event splits them out as
// `cacheReadTokens` (input tokens exclude them, as Anthropic reports them) and the cost prices
// them at the model's cache-read rate. The emulator reports `CACHED_<n>` tokens of the user text
// as cache hits.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BudgetGuard, costUsd, PriceTable } from "../../../host/src/agent/index.js";
import type { TurnEvent } from "../../../host/src/agent/types.js";
import { startEmulator, type Emulator } from "../../support/emulator/server.mjs";
import { agentConfig, keyOf, makeRuntime, recordingLogger, send } from "../support.js";

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
});

type Usage = { inputTokens: number; outputTokens: number; cacheReadTokens?: number; costUsd?: number; provider?: string; model?: string };

const cases = [
  { provider: "openai" as const, model: "gpt-5.4" },
  { provider: "gemini" as const, model: "gemini-2.5-flash" },
];

describe.each(cases)("prompt-cache tokens of $provider", ({ provider, model }) => {
  it("are split out of the input tokens and priced at the cache-read rate; the session log keeps them", async () => {
    emulator.reset();
    const logger = recordingLogger();
    const budget = new BudgetGuard({ budgets: { timezone: "UTC", warnAt: 0.8 }, pricing: {}, logger });
    const { runtime, log } = makeRuntime(emulator, [agentConfig({ provider, model })], { budget, logger });
    const events: TurnEvent[] = [];
    const out = await send(runtime, "hello CACHED_10", { peer: `cache-${provider}`, events });
    expect(out.text).toBe("You said: hello CACHED_10");
    const usage = events.filter((e) => e.type === "usage").map((e) => e.data as Usage);
    expect(usage).toHaveLength(1);
    const u = usage[0]!;
    expect(u).toMatchObject({ provider, model, cacheReadTokens: 10 });
    // The emulator's prompt count is ceil(request bytes / 4), cached tokens included.
    const promptTokens = Math.ceil(emulator.requests[0]!.bytes / 4);
    expect(u.inputTokens + u.cacheReadTokens!).toBe(promptTokens);
    const price = new PriceTable().priceOf(provider, model)!;
    expect(price.cacheRead).toBeLessThan(price.input);
    expect(u.costUsd).toBeCloseTo(((promptTokens - 10) * price.input + 10 * price.cacheRead! + u.outputTokens * price.output) / 1e6, 12);
    // Cheaper than the same call without the cache hit.
    expect(u.costUsd!).toBeLessThan(costUsd(price, { inputTokens: promptTokens, outputTokens: u.outputTokens }));
    const stored = (await log.read(keyOf(`cache-${provider}`))).filter((e) => e.kind === "usage").map((e) => e.data as Usage);
    expect(stored).toEqual([expect.objectContaining({ cacheReadTokens: 10, inputTokens: u.inputTokens, costUsd: u.costUsd })]);
  });

  it("are absent when the provider reports no cache hit", async () => {
    emulator.reset();
    const logger = recordingLogger();
    const budget = new BudgetGuard({ budgets: { timezone: "UTC", warnAt: 0.8 }, pricing: {}, logger });
    const { runtime } = makeRuntime(emulator, [agentConfig({ provider, model })], { budget, logger });
    const events: TurnEvent[] = [];
    await send(runtime, "hello", { peer: `nocache-${provider}`, events });
    const u = events.find((e) => e.type === "usage")!.data as Usage;
    expect(u.cacheReadTokens).toBeUndefined();
    expect(u.inputTokens).toBe(Math.ceil(emulator.requests[0]!.bytes / 4));
  });
});
