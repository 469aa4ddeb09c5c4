// The provider adapters (real SDKs) against a provider emulator that hangs: after the headers and
// the first events, or before the headers. The idle timeout ends the call with a ProviderError
// whose reason is `idle_timeout` (not an abort), and the SDK's HTTP request is really cancelled
// (the emulator sees its client go away). Short timeouts keep the tests quick; nothing is timed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAnthropicProvider, createGeminiProvider, createOllamaProvider, createOpenAIProvider } from "../../host/src/agent/providers/index.js";
import { ProviderError } from "../../host/src/agent/errors.js";
import type { ModelEvent, ModelProvider } from "../../host/src/agent/types.js";
import { RpcError } from "../../host/src/protocol/errors.js";
import { waitUntil } from "../support/channel-gateway.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";

/** Drains one call; returns what it yielded and what it threw. */
async function call(provider: ModelProvider, content: string, options: { signal?: AbortSignal; idleTimeoutMs?: number } = {}) {
  const request = {
    model: "emulator",
    maxTokens: 100,
    messages: [{ role: "user" as const, content: [{ type: "text" as const, text: content }] }],
    tools: [],
    ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
  };
  const events: ModelEvent[] = [];
  try {
    for await (const ev of provider.stream(request, options.signal ?? new AbortController().signal)) events.push(ev);
  } catch (err) {
    return { events, error: err };
  }
  return { events, error: undefined };
}

describe.each(["anthropic", "openai", "ollama", "gemini"] as const)("%s: a provider that stops sending", (name) => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(async () => {
    await emulator?.close();
  });
  const make = (idleTimeoutMs: number | undefined) => {
    const endpoint = { apiKey: "sk-test", timeoutMs: 600_000, ...(idleTimeoutMs !== undefined ? { idleTimeoutMs } : {}) };
    if (name === "anthropic") return createAnthropicProvider({ ...endpoint, baseUrl: emulator.url });
    if (name === "openai") return createOpenAIProvider({ ...endpoint, baseUrl: `${emulator.url}/v1` });
    if (name === "gemini") return createGeminiProvider({ ...endpoint, baseUrl: emulator.url });
    return createOllamaProvider({ ...endpoint, baseUrl: emulator.url });
  };
  beforeAll(async () => {
    // The first call imports the SDK and loads fetch: done here, not inside a short idle timeout.
    expect((await call(make(undefined), "ping")).error).toBeUndefined();
  });
  const abandoned = (marker: string) => emulator.waitForAbandoned((r) => JSON.stringify(r.body).includes(marker));

  it("after the first events: the idle timeout ends the call with a provider error, and the HTTP request is cancelled", async () => {
    const { events, error } = await call(make(1000), "STALL_AFTER_HEADERS mark-after");
    // The events before the stall were delivered.
    expect(events).toContainEqual({ type: "text", delta: "Partial " });
    expect(error).toBeInstanceOf(ProviderError);
    const e = error as ProviderError;
    expect(e.code).toBe(-32000);
    expect(e.message).toBe(`provider ${name} stopped sending: no stream event for 1 s (idle_timeout_ms)`);
    expect(e.data).toEqual({ reason: "idle_timeout", idleTimeoutMs: 1000 });
    await abandoned("mark-after");
  });

  it("before the headers: the same idle timeout ends the call", async () => {
    const { events, error } = await call(make(300), "STALL_BEFORE_HEADERS mark-before");
    expect(events).toEqual([]);
    expect((error as RpcError).code).toBe(-32000);
    expect((error as RpcError).data).toEqual({ reason: "idle_timeout", idleTimeoutMs: 300 });
    await abandoned("mark-before");
  });

  it("the request's idle timeout (the agent's) overrides the endpoint's", async () => {
    const { error } = await call(make(3_600_000), "STALL_AFTER_HEADERS mark-override", { idleTimeoutMs: 250 });
    expect((error as RpcError).data).toEqual({ reason: "idle_timeout", idleTimeoutMs: 250 });
    await abandoned("mark-override");
  });

  it("an abort by the caller ends a stalled call with the signal's reason, not a provider error", async () => {
    const controller = new AbortController();
    const reason = new RpcError(-32006, "caller went away");
    const pending = call(make(3_600_000), "STALL_AFTER_HEADERS mark-abort", { signal: controller.signal });
    await waitUntil(() => emulator.requests.some((r) => JSON.stringify(r.body).includes("mark-abort")), 15_000, "the request");
    controller.abort(reason);
    const { error } = await pending;
    expect(error).toBe(reason);
    await abandoned("mark-abort");
  });

  it("a consumer that stops at an event closes the SDK stream: the HTTP request is cancelled at once", async () => {
    // The stall never ends and the idle timeout is an hour: only the consumer's exit can end the request.
    const events: ModelEvent[] = [];
    const request = {
      model: "emulator",
      maxTokens: 100,
      messages: [{ role: "user" as const, content: [{ type: "text" as const, text: "STALL_AFTER_HEADERS mark-exit" }] }],
      tools: [],
    };
    for await (const ev of make(3_600_000).stream(request, new AbortController().signal)) {
      events.push(ev);
      if (ev.type === "text") break;
    }
    expect(events.at(-1)).toEqual({ type: "text", delta: "Partial " });
    await abandoned("mark-exit");
  });

  it("a stream that keeps sending is not cut by an idle timeout shorter than the whole call", async () => {
    // Chunks 100 ms apart: longer in all than the idle timeout, never that long without an event.
    const { events, error } = await call(make(1000), "SLOW_100MS one two three four five six seven eight nine ten eleven twelve");
    expect(error).toBeUndefined();
    expect(events.at(-1)).toMatchObject({ type: "stop" });
  });
});
