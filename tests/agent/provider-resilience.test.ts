// The provider resilience layer (host/src/agent/resilience) driving the real adapters (official
// SDKs) against the provider emulator, scripted per provider, model and key: retries honour
// Retry-After, the chain falls back for errors another provider survives and never for a 400,
// keys rotate on 429/401, the breaker opens and closes. Times are asserted loosely, counts exactly.
import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ProviderError } from "../../host/src/agent/errors.js";
import { TurnRecorder } from "../../host/src/agent/journal.js";
import { runTurn } from "../../host/src/agent/loop.js";
import { createProviderSet } from "../../host/src/agent/providers/index.js";
import { DEFAULT_RESILIENCE, ProviderResilience, type ModelRef, type ResiliencePolicy, type SwitchNotice } from "../../host/src/agent/resilience/index.js";
import type { ModelEvent, TurnEvent } from "../../host/src/agent/types.js";
import type { Config } from "../../host/src/config/index.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";

const FAST: ResiliencePolicy = { ...DEFAULT_RESILIENCE, baseMs: 5, maxMs: 5_000, maxRetries: 2, failures: 0, keys: 1 };
const CHAIN: ModelRef[] = [
  { provider: "anthropic", model: "primary" },
  { provider: "openai", model: "emulator" },
];

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  return port;
}

describe("provider resilience against the emulator", () => {
  let emulator: Emulator;
  let refused: string;
  beforeAll(async () => {
    emulator = await startEmulator();
    refused = `http://127.0.0.1:${await closedPort()}`;
  });
  afterAll(async () => {
    await emulator?.close();
  });
  beforeEach(() => {
    emulator.reset();
    emulator.clearFaults();
  });

  function setup(opts: { anthropic?: Partial<ResiliencePolicy>; anthropicUrl?: string; keys?: string[] } = {}) {
    const endpoint = { timeoutMs: 10_000, idleTimeoutMs: 10_000 };
    const providers: Config["providers"] = {
      anthropic: { ...endpoint, baseUrl: opts.anthropicUrl ?? emulator.url, apiKey: opts.keys?.[0] ?? "sk-ant", ...(opts.keys ? { apiKeys: opts.keys } : {}) },
      openai: { ...endpoint, baseUrl: `${emulator.url}/v1`, apiKey: "sk-oai" },
      ollama: { ...endpoint, baseUrl: emulator.url },
      gemini: { ...endpoint, baseUrl: emulator.url, apiKey: "gemini-key" },
    };
    const switches: SwitchNotice[] = [];
    const resilience = new ProviderResilience({
      providers: createProviderSet(providers),
      policies: { anthropic: { ...FAST, keys: opts.keys?.length ?? 1, ...opts.anthropic }, openai: FAST },
      onSwitch: (n) => switches.push(n),
    });
    return { resilience, switches };
  }

  async function call(resilience: ProviderResilience, content = "hello", chain = CHAIN): Promise<{ events: ModelEvent[]; text: string }> {
    const events: ModelEvent[] = [];
    const request = {
      model: chain[0]!.model,
      maxTokens: 100,
      messages: [{ role: "user" as const, content: [{ type: "text" as const, text: content }] }],
      tools: [],
    };
    for await (const ev of resilience.provider(chain).stream(request, new AbortController().signal)) events.push(ev);
    let text = "";
    for (const ev of events) {
      if (ev.type === "text") text += ev.delta;
      if (ev.type === "failover" && ev.discard) text = "";
    }
    return { events, text };
  }

  const credentialOf = (h: Record<string, unknown>) => String(h["x-api-key"] ?? h.authorization).replace(/^Bearer /, "");
  const byProvider = (p: string) => emulator.requests.filter((r) => r.provider === p).length;

  it("HTTP 500 on the primary: retried, then the turn completes on the fallback", async () => {
    const { resilience, switches } = setup();
    const rule = emulator.fault({ model: "primary", mode: "http_500" });
    const { events, text } = await call(resilience);
    expect(text).toBe("You said: hello");
    expect(rule.hits).toBe(3); // 1 + max_retries 2
    expect(byProvider("openai")).toBe(1);
    expect(events.filter((e) => e.type === "failover")).toEqual([
      { type: "failover", from: "anthropic/primary", to: "openai/emulator", reason: "server_error", discard: false },
    ]);
    expect(switches.map((s) => s.kind)).toEqual(["retry", "retry", "fallback"]);
  });

  it("529 overloaded falls back too", async () => {
    const { resilience } = setup({ anthropic: { maxRetries: 0 } });
    emulator.fault({ model: "primary", mode: "overloaded" });
    const { events, text } = await call(resilience);
    expect(text).toBe("You said: hello");
    expect(events.find((e) => e.type === "failover")).toMatchObject({ reason: "overloaded" });
  });

  it("429 with Retry-After: the retry waits at least the header and stays on the provider", async () => {
    const { resilience } = setup();
    const rule = emulator.fault({ model: "primary", mode: "http_429", retryAfter: "1", times: 1 });
    const t0 = performance.now();
    const { events, text } = await call(resilience);
    const waited = performance.now() - t0;
    expect(text).toBe("You said: hello");
    expect(rule.hits).toBe(1);
    expect(byProvider("anthropic")).toBe(2);
    expect(byProvider("openai")).toBe(0);
    expect(events.some((e) => e.type === "failover")).toBe(false);
    expect(waited).toBeGreaterThanOrEqual(950); // loosely: at least the header's 1 s
  });

  it("429 whose Retry-After exceeds retry_max_ms moves on at once", async () => {
    const { resilience } = setup();
    const rule = emulator.fault({ model: "primary", mode: "http_429", retryAfter: "120" });
    const { events, text } = await call(resilience);
    expect(text).toBe("You said: hello");
    expect(rule.hits).toBe(1);
    expect(events.find((e) => e.type === "failover")).toMatchObject({ reason: "rate_limited", to: "openai/emulator" });
  });

  it("connection refused on the primary: the fallback answers", async () => {
    const { resilience } = setup({ anthropicUrl: refused });
    const { events, text } = await call(resilience);
    expect(text).toBe("You said: hello");
    expect(events.find((e) => e.type === "failover")).toMatchObject({ from: "anthropic/primary", reason: "unreachable", discard: false });
  });

  it("a stream cut mid-answer: the partial text is discarded, the fallback's answer is not duplicated", async () => {
    const { resilience } = setup({ anthropic: { maxRetries: 0 } });
    emulator.fault({ model: "primary", mode: "cut" });
    const emitted: TurnEvent[] = [];
    const recorder = new TurnRecorder("run-1");
    const tools = { specs: [], call: async () => ({ content: "", isError: true }) };
    const turn = await runTurn(
      { provider: resilience.provider(CHAIN), model: "primary", maxTokens: 100, maxIterations: 2, history: [], content: "hello", tools },
      (ev) => {
        emitted.push(ev);
        recorder.record(ev);
      },
      new AbortController().signal,
    );
    // The client saw the partial text, then a failover that voids it, then the whole answer.
    expect(emitted.map((e) => e.type).filter((t, i, all) => t !== all[i - 1])).toEqual(["text", "failover", "text", "usage"]);
    expect(emitted[0]).toEqual({ type: "text", data: { delta: "Partial " } });
    expect(emitted[1]).toEqual({ type: "failover", data: { from: "anthropic/primary", to: "openai/emulator", reason: "stream_broken", discard: true } });
    expect(turn.outcome.text).toBe("You said: hello");
    expect(turn.messages[1]).toEqual({ role: "assistant", content: [{ type: "text", text: "You said: hello" }] });
    // The session log gets the answer once, and the failover on the call's usage event.
    const stored = recorder.finish({ kind: "turn_ended", stopReason: "end_turn" });
    expect(stored.filter((e) => e.kind === "assistant_text").map((e) => e.data)).toEqual([{ text: "You said: hello" }]);
    expect(stored.find((e) => e.kind === "usage")!.data).toMatchObject({
      failover: [{ from: "anthropic/primary", to: "openai/emulator", reason: "stream_broken", discard: true }],
    });
  });

  it("a 400 caused by the request does not fall back and is not retried", async () => {
    const { resilience } = setup();
    const rule = emulator.fault({ model: "primary", mode: "http_400" });
    const err = await call(resilience).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).status).toBe(400);
    expect(rule.hits).toBe(1);
    expect(byProvider("openai")).toBe(0);
  });

  it("every model failing: the last provider's error", async () => {
    const { resilience } = setup({ anthropic: { maxRetries: 0 } });
    emulator.fault({ mode: "http_500" });
    const err = await call(resilience).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as ProviderError).message).toMatch(/provider openai failed \(HTTP 500/);
    expect(byProvider("anthropic")).toBe(1);
    expect(byProvider("openai")).toBe(3);
  });

  it("the breaker opens after N failures, skips the provider, and closes after a good probe", async () => {
    const { resilience, switches } = setup({ anthropic: { maxRetries: 0, failures: 2, cooldownMs: 300 } });
    const rule = emulator.fault({ model: "primary", mode: "http_500" });
    await call(resilience);
    expect(resilience.breakerState("anthropic")).toBe("closed");
    await call(resilience);
    expect(resilience.breakerState("anthropic")).toBe("open");
    expect(rule.hits).toBe(2);
    // Open: the provider is skipped without a request.
    const skipped = await call(resilience);
    expect(skipped.text).toBe("You said: hello");
    expect(rule.hits).toBe(2);
    expect(skipped.events.find((e) => e.type === "failover")).toMatchObject({ reason: "circuit_open" });
    expect(switches.filter((s) => s.kind === "breaker_open")).toHaveLength(1);
    expect(switches.filter((s) => s.kind === "breaker_skip")).toHaveLength(1);
    // Past the cooldown a failing probe re-opens it at once ...
    await new Promise((r) => setTimeout(r, 400));
    await call(resilience);
    expect(rule.hits).toBe(3);
    expect(resilience.breakerState("anthropic")).toBe("open");
    // ... and a good probe closes it.
    emulator.clearFaults();
    await new Promise((r) => setTimeout(r, 400));
    const before = byProvider("openai");
    const ok = await call(resilience);
    expect(ok.events.some((e) => e.type === "failover")).toBe(false);
    expect(byProvider("openai")).toBe(before);
    expect(resilience.breakerState("anthropic")).toBe("closed");
  });

  it("a chain whose every provider's breaker is open fails fast with -32001", async () => {
    const { resilience } = setup({ anthropic: { maxRetries: 0, failures: 1, cooldownMs: 60_000 } });
    emulator.fault({ model: "primary", mode: "http_500" });
    const alone: ModelRef[] = [CHAIN[0]!];
    await call(resilience, "hello", alone).catch(() => undefined);
    const before = emulator.requests.length;
    const err = await call(resilience, "hello", alone).catch((e: unknown) => e);
    expect((err as ProviderError).code).toBe(-32001);
    expect((err as ProviderError).message).toMatch(/circuit breaker open/);
    expect(emulator.requests.length).toBe(before);
  });

  it("429 on one key rotates to the next key at once; the limited key rests", async () => {
    const { resilience, switches } = setup({ keys: ["sk-key-one", "sk-key-two"] });
    const rule = emulator.fault({ key: "sk-key-one", mode: "http_429", retryAfter: "30" });
    const t0 = performance.now();
    expect((await call(resilience)).text).toBe("You said: hello");
    expect(performance.now() - t0).toBeLessThan(30_000); // did not wait for the limited key
    expect((await call(resilience)).text).toBe("You said: hello");
    expect(rule.hits).toBe(1);
    const keys = emulator.requests.map((r) => credentialOf(r.headers));
    expect(keys).toEqual(["sk-key-one", "sk-key-two", "sk-key-two"]);
    expect(switches.map((s) => s.kind)).toEqual(["key", "retry"]);
  });

  it("401 with a single key moves on to the next model at once", async () => {
    const { resilience, switches } = setup();
    const rule = emulator.fault({ model: "primary", mode: "http_401" });
    const { events, text } = await call(resilience);
    expect(text).toBe("You said: hello");
    expect(rule.hits).toBe(1);
    expect(events.find((e) => e.type === "failover")).toMatchObject({ reason: "credentials" });
    expect(switches.map((s) => s.kind)).toEqual(["fallback"]);
  });

  it("401 with a single key does not rest it: the next call tries it again and gets the provider's error", async () => {
    const { resilience } = setup();
    emulator.fault({ model: "primary", mode: "http_401" });
    const alone: ModelRef[] = [CHAIN[0]!];
    for (let i = 0; i < 2; i++) {
      const err = await call(resilience, "hello", alone).catch((e: unknown) => e);
      expect((err as ProviderError).status).toBe(401);
      expect((err as ProviderError).message).not.toMatch(/no model provider available/);
    }
    expect(emulator.requests.length).toBe(2);
  });

  it("401 on one key rotates to the next key", async () => {
    const { resilience } = setup({ keys: ["sk-key-one", "sk-key-two"] });
    emulator.fault({ key: "sk-key-one", mode: "http_401" });
    expect((await call(resilience)).text).toBe("You said: hello");
    expect(emulator.requests.map((r) => credentialOf(r.headers))).toEqual(["sk-key-one", "sk-key-two"]);
    expect(byProvider("openai")).toBe(0);
  });
});
