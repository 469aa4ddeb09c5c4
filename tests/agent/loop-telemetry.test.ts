/**
 * The tool-use loop reports each of its model calls to the turn's telemetry itself (no wrapper
 * around the provider stream): one call per model call, named by the provider and the request's
 * model, with the call's tokens as its `usage` events gave them, `ok` false when the stream threw.
 * Real Anthropic adapter (official SDK) against the provider emulator.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ProviderError } from "../../host/src/agent/errors.js";
import { runTurn, type TurnTools } from "../../host/src/agent/loop.js";
import { createProviderSet } from "../../host/src/agent/providers/index.js";
import type { TurnEvent } from "../../host/src/agent/types.js";
import type { Config } from "../../host/src/config/index.js";
import type { ProviderCallTelemetry, TurnTelemetry } from "../../host/src/telemetry/index.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";

interface RecordedCall {
  provider: string;
  model: string;
  ended: { ok: boolean; inputTokens: number; outputTokens: number }[];
}

/** A TurnTelemetry recording every providerCall and each `end` it gets. */
function recordingTelemetry(): Pick<TurnTelemetry, "providerCall"> & { calls: RecordedCall[] } {
  const calls: RecordedCall[] = [];
  return {
    calls,
    providerCall(provider, model): ProviderCallTelemetry {
      const c: RecordedCall = { provider, model, ended: [] };
      calls.push(c);
      return { end: (r) => void c.ended.push(r) };
    },
  };
}

describe("the loop's model-call telemetry", () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(async () => {
    await emulator?.close();
  });
  beforeEach(() => {
    emulator.reset();
    emulator.clearFaults();
  });

  function anthropic() {
    const endpoint = { timeoutMs: 10_000, idleTimeoutMs: 10_000 };
    const providers: Config["providers"] = {
      anthropic: { ...endpoint, baseUrl: emulator.url, apiKey: "sk-ant" },
      openai: { ...endpoint, baseUrl: `${emulator.url}/v1`, apiKey: "sk-oai" },
      ollama: { ...endpoint, baseUrl: emulator.url },
      gemini: { ...endpoint, baseUrl: emulator.url, apiKey: "gemini-key" },
    };
    return createProviderSet(providers)("anthropic");
  }

  const calculator: TurnTools = {
    specs: [{ name: "calculator", description: "evaluates arithmetic", inputSchema: { type: "object", properties: { expression: { type: "string" } } } }],
    call: async () => ({ content: "5", isError: false }),
  };

  it("reports each model call of a tool loop once, ok, with the tokens the turn's usage events carry", async () => {
    const telemetry = recordingTelemetry();
    const events: TurnEvent[] = [];
    const turn = await runTurn(
      { provider: anthropic(), model: "test-model", maxTokens: 100, maxIterations: 4, history: [], content: "What is 2+3?", tools: calculator, telemetry },
      (ev) => events.push(ev),
      new AbortController().signal,
    );
    expect(turn.outcome.iterations).toBe(2);
    const usages = events.filter((e): e is Extract<TurnEvent, { type: "usage" }> => e.type === "usage").map((e) => e.data);
    expect(usages).toHaveLength(2);
    expect(telemetry.calls).toEqual(
      usages.map((u) => ({ provider: "anthropic", model: "test-model", ended: [{ ok: true, inputTokens: u.inputTokens, outputTokens: u.outputTokens }] })),
    );
    expect(telemetry.calls[0]!.ended[0]!.inputTokens).toBeGreaterThan(0);
    expect(telemetry.calls[0]!.ended[0]!.outputTokens).toBeGreaterThan(0);
  });

  it("reports a stream that threw as one call not ok", async () => {
    const telemetry = recordingTelemetry();
    emulator.fault({ model: "test-model", mode: "cut" });
    const err = await runTurn(
      { provider: anthropic(), model: "test-model", maxTokens: 100, maxIterations: 4, history: [], content: "hello", tools: calculator, telemetry },
      () => {},
      new AbortController().signal,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(telemetry.calls).toHaveLength(1);
    expect(telemetry.calls[0]!.ended).toHaveLength(1);
    expect(telemetry.calls[0]!.ended[0]!.ok).toBe(false);
  });

  it("reports nothing without telemetry (the turn runs the same)", async () => {
    const turn = await runTurn(
      { provider: anthropic(), model: "test-model", maxTokens: 100, maxIterations: 4, history: [], content: "hello", tools: calculator },
      () => {},
      new AbortController().signal,
    );
    expect(turn.outcome.text).toBe("You said: hello");
  });
});
